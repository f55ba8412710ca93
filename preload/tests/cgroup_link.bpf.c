// SPDX-License-Identifier: GPL-2.0-or-later
// A BPF object for the links test: one cgroup_skb program (every packet passes), which
// libbpf_link.c attaches to a cgroup as a BPF link and pins with bpf_link__pin.
// linux/bpf.h first: bpf_helpers.h uses its types (a block of its own, so that the include
// sorting of .clang-format keeps the order).
#include <linux/bpf.h>

#include <bpf/bpf_helpers.h>

SEC("cgroup_skb/ingress")
int pass_all(struct __sk_buff* skb) { return 1; }

char LICENSE[] SEC("license") = "GPL";
