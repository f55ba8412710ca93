// SPDX-License-Identifier: GPL-2.0-or-later
// A BPF object for the libbpf test: one map declared with BTF and LIBBPF_PIN_BY_NAME (libbpf
// pins it at <pin_root_path>/counters, or reuses what is pinned there) and one socket filter
// that uses it. Compiled with clang -target bpf; with -DBPFFS_TEST_NO_PIN the map is not pinned
// (for `bpftool prog load`, which pins the program and, with `pinmaps`, the maps itself).
// linux/bpf.h first: bpf_helpers.h uses its types (a block of its own, so that the include
// sorting of .clang-format keeps the order).
#include <linux/bpf.h>

#include <bpf/bpf_helpers.h>

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 16);
    __type(key, __u32);
    __type(value, __u64);
#ifndef BPFFS_TEST_NO_PIN
    __uint(pinning, LIBBPF_PIN_BY_NAME);
#endif
} counters SEC(".maps");

SEC("socket")
int count_packets(struct __sk_buff* skb) {
    __u32 key = 0;
    __u64* value = bpf_map_lookup_elem(&counters, &key);
    if (value) __sync_fetch_and_add(value, 1);
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
