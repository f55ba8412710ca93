// SPDX-License-Identifier: GPL-2.0-or-later
// A BPF object for the iproute2 test: one map pinned by name and two programs that count into
// it, a tc classifier (`tc filter ... bpf obj ... sec tc`) and an XDP program (`ip link set dev X
// xdp obj ... sec xdp`). iproute2 opens it with libbpf and pin_root_path <bpffs>/<tc|xdp>/globals,
// so the map lands at tc/globals/shared_counts (iproute2's PIN_GLOBAL_NS place), and the XDP
// load finds it again through xdp/, which iproute2 makes a symlink to tc/.
// linux/bpf.h first: bpf_helpers.h uses its types (a block of its own, so that the include
// sorting of .clang-format keeps the order).
#include <linux/bpf.h>

#include <bpf/bpf_helpers.h>

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 2);
    __type(key, __u32);
    __type(value, __u64);
    __uint(pinning, LIBBPF_PIN_BY_NAME);
} shared_counts SEC(".maps");

static void count(__u32 key) {
    __u64* value = bpf_map_lookup_elem(&shared_counts, &key);
    if (value) __sync_fetch_and_add(value, 1);
}

SEC("tc")
int tc_count(struct __sk_buff* skb) {
    count(0);
    return 0;  // TC_ACT_OK
}

SEC("xdp")
int xdp_count(struct xdp_md* ctx) {
    count(1);
    return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
