// SPDX-License-Identifier: GPL-2.0-or-later
// A BPF object for the links test: a task iterator for `bpftool iter pin`, which loads it,
// attaches it (a BPF link of type iter) and pins the link. Reading the pinned iterator on a
// kernel bpffs (`cat`) gives one line, "bpffs task iterator", whatever the tasks are.
// The context types are declared here as the kernel lays them out (include/linux/bpf.h's
// bpf_iter_meta, kernel/bpf/task_iter.c's bpf_iter__task): the verifier checks the accesses
// against the kernel's BTF, not against these names.
#include <linux/bpf.h>

#include <bpf/bpf_helpers.h>

struct seq_file;
struct task_struct;

struct bpf_iter_meta {
    struct seq_file* seq;
    __u64 session_id;
    __u64 seq_num;
};

struct bpf_iter__task {
    struct bpf_iter_meta* meta;
    struct task_struct* task;
};

SEC("iter/task")
int one_line(struct bpf_iter__task* ctx) {
    static const char line[] = "bpffs task iterator\n";
    struct bpf_iter_meta* meta = ctx->meta;
    if (ctx->task && meta->seq_num == 0) bpf_seq_write(meta->seq, line, sizeof line - 1);
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
