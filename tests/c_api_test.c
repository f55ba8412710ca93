/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The public C API used from C: proves that <bpffs/bpffs.h> compiles as C and that libbpffs
 * links and works without C++ on the caller's side.
 *
 *   c_api_test DIR   (DIR: a directory on a bpffs-fuse mount; run as root)
 *
 * Creates a map with libbpf, stores a value, pins it as DIR/c_api_map, fetches it back, compares
 * the kernel ids and the value, checks the -errno/errno convention on EEXIST and ENOENT, then
 * unlinks the node. Prints "c_api_test: ok" and exits 0, or prints what failed and exits 1.
 * broker_tests runs it against a fresh mount.
 */
#include <bpffs/bpffs.h>

#include <bpf/bpf.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int failures;

#define EXPECT(cond)                                                                              \
    do {                                                                                          \
        if (!(cond)) {                                                                            \
            fprintf(stderr, "c_api_test: %s:%d: failed: %s (errno %d: %s)\n", __FILE__, __LINE__, \
                    #cond, errno, strerror(errno));                                               \
            ++failures;                                                                           \
        }                                                                                         \
    } while (0)

static uint32_t map_id(int fd) {
    struct bpf_map_info info;
    uint32_t len = sizeof info;
    memset(&info, 0, sizeof info);
    if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0) return 0;
    return info.id;
}

int main(int argc, char** argv) {
    char path[4096], missing[4096];
    uint32_t key = 1;
    uint64_t value = 0xc0ffee, got = 0;
    int map, fd, rc;

    if (argc != 2) {
        fprintf(stderr, "usage: c_api_test DIR\n");
        return 1;
    }
    snprintf(path, sizeof path, "%s/c_api_map", argv[1]);
    snprintf(missing, sizeof missing, "%s/c_api_missing", argv[1]);

    map = bpf_map_create(BPF_MAP_TYPE_HASH, "c_api_test", sizeof key, sizeof value, 4, NULL);
    if (map < 0) {
        fprintf(stderr, "c_api_test: bpf_map_create: %s\n", strerror(-map));
        return 1;
    }
    EXPECT(bpf_map_update_elem(map, &key, &value, BPF_ANY) == 0);

    rc = bpffs_obj_pin(map, path);
    EXPECT(rc == 0);

    errno = 0;
    rc = bpffs_obj_pin(map, path);
    EXPECT(rc == -EEXIST);
    EXPECT(errno == EEXIST);

    fd = bpffs_obj_get(path);
    EXPECT(fd >= 0);
    if (fd >= 0) {
        EXPECT(fd != map);
        EXPECT(map_id(fd) != 0);
        EXPECT(map_id(fd) == map_id(map));
        EXPECT(bpf_map_lookup_elem(fd, &key, &got) == 0);
        EXPECT(got == value);
        EXPECT((fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);
        close(fd);
    }

    {
        /* The options struct, as C sets it: the root daemon needs no trusted uid. */
        struct bpffs_opts opts = {.sz = sizeof(struct bpffs_opts), .trust_uid = 65534};
        fd = bpffs_obj_get_opts(path, &opts);
        EXPECT(fd >= 0 && map_id(fd) == map_id(map));
        if (fd >= 0) close(fd);
    }

    errno = 0;
    fd = bpffs_obj_get(missing);
    EXPECT(fd == -ENOENT);
    EXPECT(errno == ENOENT);
    if (fd >= 0) close(fd);

    EXPECT(unlink(path) == 0);
    errno = 0;
    EXPECT(bpffs_obj_get(path) == -ENOENT);
    close(map);

    if (failures != 0) {
        fprintf(stderr, "c_api_test: %d check(s) failed\n", failures);
        return 1;
    }
    printf("c_api_test: ok\n");
    return 0;
}
