/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A program outside the project that uses an installed libbpffs, as a user's would: built by the
 * ops tests against a DESTDIR install, once with pkg-config and once with find_package(bpffs)
 * (shared and static), and by the build itself as a helper that pins real objects.
 *
 *   bpffs_consumer [--keep] DIR     (DIR: a directory on a bpffs-fuse mount; run as root)
 *
 * Creates a hash map (with a value in it) and a socket-filter program with libbpf, pins them as
 * DIR/consumer_map and DIR/consumer_prog with bpffs_obj_pin, fetches both with bpffs_obj_get
 * and checks that the kernel ids match and the map holds the value. Unlinks both nodes unless
 * --keep. Prints "bpffs_consumer: ok map_id=N prog_id=M" and exits 0, or says what failed and
 * exits 1.
 */
#include <bpffs/bpffs.h>

#include <bpf/bpf.h>
#include <errno.h>
#include <linux/bpf.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int fail(const char* what, int err) {
    fprintf(stderr, "bpffs_consumer: %s: %s\n", what, strerror(err));
    return 1;
}

static uint32_t object_id(int fd) {
    /* bpf_map_info and bpf_prog_info both start with type, id. */
    struct bpf_prog_info info;
    uint32_t len = sizeof info;
    memset(&info, 0, sizeof info);
    if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0) return 0;
    return info.id;
}

/* Pins `fd` at `path`, fetches it back and compares the kernel ids. Returns the new fd or -1. */
static int pin_and_get(int fd, const char* path) {
    int rc = bpffs_obj_pin(fd, path);
    if (rc != 0) {
        fprintf(stderr, "bpffs_consumer: bpffs_obj_pin %s: %s (rc %d)\n", path, strerror(errno),
                rc);
        return -1;
    }
    int got = bpffs_obj_get(path);
    if (got < 0) {
        fprintf(stderr, "bpffs_consumer: bpffs_obj_get %s: %s (rc %d)\n", path, strerror(errno),
                got);
        return -1;
    }
    uint32_t want = object_id(fd), have = object_id(got);
    if (want == 0 || want != have) {
        fprintf(stderr, "bpffs_consumer: %s: kernel id %u, fetched %u\n", path, want, have);
        close(got);
        return -1;
    }
    return got;
}

int main(int argc, char** argv) {
    int keep = argc == 3 && strcmp(argv[1], "--keep") == 0;
    if (argc != 2 + keep) {
        fprintf(stderr, "usage: bpffs_consumer [--keep] DIR\n");
        return 2;
    }
    const char* dir = argv[1 + keep];
    char map_path[4096], prog_path[4096];
    snprintf(map_path, sizeof map_path, "%s/consumer_map", dir);
    snprintf(prog_path, sizeof prog_path, "%s/consumer_prog", dir);

    uint32_t key = 7;
    uint64_t value = 0x600dcafe, seen = 0;
    int map = bpf_map_create(BPF_MAP_TYPE_HASH, "consumer", sizeof key, sizeof value, 4, NULL);
    if (map < 0) return fail("bpf_map_create", -map);
    if (bpf_map_update_elem(map, &key, &value, BPF_ANY) != 0)
        return fail("bpf_map_update_elem", errno);

    /* r0 = 0; exit */
    struct bpf_insn insns[2];
    memset(insns, 0, sizeof insns);
    insns[0].code = BPF_ALU64 | BPF_MOV | BPF_K;
    insns[0].dst_reg = BPF_REG_0;
    insns[1].code = BPF_JMP | BPF_EXIT;
    int prog = bpf_prog_load(BPF_PROG_TYPE_SOCKET_FILTER, "consumer", "GPL", insns, 2, NULL);
    if (prog < 0) return fail("bpf_prog_load", -prog);

    int got_map = pin_and_get(map, map_path);
    if (got_map < 0) return 1;
    if (bpf_map_lookup_elem(got_map, &key, &seen) != 0)
        return fail("lookup in the fetched map", errno);
    if (seen != value) {
        fprintf(stderr, "bpffs_consumer: fetched map holds %#llx, want %#llx\n",
                (unsigned long long)seen, (unsigned long long)value);
        return 1;
    }
    int got_prog = pin_and_get(prog, prog_path);
    if (got_prog < 0) return 1;

    printf("bpffs_consumer: ok map_id=%u prog_id=%u\n", object_id(map), object_id(prog));
    if (!keep) {
        if (unlink(map_path) != 0) return fail(map_path, errno);
        if (unlink(prog_path) != 0) return fail(prog_path, errno);
    }
    close(got_prog);
    close(got_map);
    close(prog);
    close(map);
    return 0;
}
