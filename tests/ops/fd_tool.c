/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What a program that was handed a map fd does with libbpffs, for the rootless ops test
 * (docs/rootless.md): bpffsctl pins only what it can open itself (by id, or from a path), and an
 * unprivileged process in a user namespace can open neither a map by id nor one it was not given.
 *
 *   ops_fd_tool pin FD PATH                  bpffs_obj_pin(FD, PATH), FD inherited
 *   ops_fd_tool get [--rdonly|--wronly] PATH bpffs_obj_get_opts(PATH) with that file_flags
 *
 * Prints "ops_fd_tool: <verb> PATH: id N" (the kernel id of the object pinned or fetched) and
 * exits 0, or prints "ops_fd_tool: <verb> PATH: <strerror>" and exits 1; 2 on a usage error.
 */
#include <bpffs/bpffs.h>

#include <bpf/bpf.h>
#include <errno.h>
#include <linux/bpf.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int usage(void) {
    fprintf(stderr,
            "usage: ops_fd_tool pin FD PATH\n"
            "       ops_fd_tool get [--rdonly|--wronly] PATH\n");
    return 2;
}

static int report(const char* verb, const char* path, int fd) {
    if (fd < 0) {
        printf("ops_fd_tool: %s %s: %s\n", verb, path, strerror(errno));
        return 1;
    }
    struct bpf_map_info info;
    uint32_t len = sizeof info;
    memset(&info, 0, sizeof info);
    if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0) {
        printf("ops_fd_tool: %s %s: object info: %s\n", verb, path, strerror(errno));
        return 1;
    }
    printf("ops_fd_tool: %s %s: id %u\n", verb, path, info.id);
    return 0;
}

int main(int argc, char** argv) {
    if (argc == 4 && strcmp(argv[1], "pin") == 0) {
        char* end = NULL;
        long fd = strtol(argv[2], &end, 10);
        if (*argv[2] == '\0' || *end != '\0' || fd < 0 || fd > 1 << 20) return usage();
        if (bpffs_obj_pin((int)fd, argv[3]) != 0) return report("pin", argv[3], -1);
        return report("pin", argv[3], (int)fd);
    }
    if ((argc == 3 || argc == 4) && strcmp(argv[1], "get") == 0) {
        struct bpffs_opts opts;
        memset(&opts, 0, sizeof opts);
        opts.sz = sizeof opts;
        if (argc == 4 && strcmp(argv[2], "--rdonly") == 0)
            opts.file_flags = BPFFS_F_RDONLY;
        else if (argc == 4 && strcmp(argv[2], "--wronly") == 0)
            opts.file_flags = BPFFS_F_WRONLY;
        else if (argc == 4)
            return usage();
        const char* path = argv[argc - 1];
        int fd = bpffs_obj_get_opts(path, &opts);
        int rc = report("get", path, fd);
        if (fd >= 0) close(fd);
        return rc;
    }
    return usage();
}
