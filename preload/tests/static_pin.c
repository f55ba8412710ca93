/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A statically linked libbpf program (libbpf.a) for the seccomp tests (seccomp_test.sh): no
 * dynamic linker, so no preload shim; its system calls are raw as far as LD_PRELOAD goes.
 *
 *   static_pin [--from SRC] PATH
 *
 * Says whether statfs of PATH's directory shows the bpf filesystem's magic, creates an array
 * map (or fetches the one pinned at SRC: a process that may not create maps), pins it at PATH,
 * fetches it back with bpf_obj_get, and prints each step's outcome (the errno's name), the kernel
 * ids of both fds, the value written through one and read through the other, and whether the
 * fetched fd is close-on-exec. Exit 0 when the pin and the get worked, 1 otherwise.
 */
#include <bpf/bpf.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdio.h>
#include <string.h>
#include <sys/vfs.h>
#include <unistd.h>

static const char* ename(int e) {
    switch (e) {
        case 0:
            return "ok";
        case EPERM:
            return "EPERM";
        case ENOENT:
            return "ENOENT";
        case EACCES:
            return "EACCES";
        case EEXIST:
            return "EEXIST";
        case ENOSYS:
            return "ENOSYS";
        case EINVAL:
            return "EINVAL";
        case ENOTDIR:
            return "ENOTDIR";
        default:
            return strerror(e);
    }
}

static unsigned id_of(int fd) {
    struct bpf_map_info info;
    __u32 len = sizeof info;
    memset(&info, 0, sizeof info);
    return bpf_obj_get_info_by_fd(fd, &info, &len) == 0 ? info.id : 0;
}

int main(int argc, char** argv) {
    const char* from = NULL;
    if (argc == 4 && strcmp(argv[1], "--from") == 0) {
        from = argv[2];
        argv += 2;
        argc -= 2;
    }
    if (argc != 2) {
        fprintf(stderr, "usage: static_pin [--from SRC] PATH\n");
        return 2;
    }
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", argv[1]);
    char* slash = strrchr(dir, '/');
    if (slash == NULL)
        strcpy(dir, ".");
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    struct statfs st;
    if (statfs(dir, &st) != 0)
        printf("statfs: %s\n", ename(errno));
    else
        printf("statfs: %s\n", st.f_type == BPF_FS_MAGIC ? "bpf" : "other");
    int map = from != NULL ? bpf_obj_get(from)
                           : bpf_map_create(BPF_MAP_TYPE_ARRAY, "static_pin", 4, 4, 1, NULL);
    if (map < 0) {
        printf("%s: %s\n", from != NULL ? "get --from" : "create",
               ename(from != NULL ? errno : -map));
        return 1;
    }
    int pin = bpf_obj_pin(map, argv[1]) == 0 ? 0 : errno;
    printf("pin: %s\n", ename(pin));
    int got = bpf_obj_get(argv[1]);
    printf("get: %s\n", ename(got >= 0 ? 0 : errno));
    if (pin != 0 || got < 0) return 1;
    __u32 key = 0, value = 4242, out = 0;
    bpf_map_update_elem(map, &key, &value, BPF_ANY);
    bpf_map_lookup_elem(got, &key, &out);
    printf("ids: %u %u\nvalue: %u\ncloexec: %s\n", id_of(map), id_of(got), out,
           (fcntl(got, F_GETFD) & FD_CLOEXEC) != 0 ? "yes" : "no");
    return 0;
}
