// SPDX-License-Identifier: GPL-2.0-or-later
// libbpf_pin: an ordinary libbpf program with a pinned map, run under the shim by the tests.
//   libbpf_pin OBJ PIN_ROOT VALUE     open OBJ (pinned_map.bpf.o) with pin_root_path PIN_ROOT and
//                                     load it: libbpf reuses the map pinned at PIN_ROOT/counters
//                                     (bpf_obj_get) or creates and pins it (bpf_map__pin, which
//                                     checks statfs for the bpf magic first)
//   libbpf_pin --api PIN_ROOT VALUE   the same without an object file (no clang -target bpf):
//                                     bpf_obj_get, else bpf_map_create + bpf_obj_pin
// Then prints "id=N old=V" (or "old=none": key 0 was not set) and stores VALUE at key 0.
// Exit status 0, or 1 with libbpf's message on stderr.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int fail(const char* what) {
    int e = errno;
    fprintf(stderr, "libbpf_pin: %s: %s\n", what, strerror(e));
    return 1;
}

static int report_and_store(int map_fd, unsigned long long value) {
    struct bpf_map_info info;
    __u32 len = sizeof info;
    memset(&info, 0, sizeof info);
    if (bpf_obj_get_info_by_fd(map_fd, &info, &len) != 0) return fail("bpf_obj_get_info_by_fd");
    __u32 key = 0;
    __u64 old = 0;
    if (bpf_map_lookup_elem(map_fd, &key, &old) == 0) {
        printf("id=%u old=%llu\n", info.id, (unsigned long long)old);
    } else if (errno == ENOENT) {
        printf("id=%u old=none\n", info.id);
    } else {
        return fail("bpf_map_lookup_elem");
    }
    __u64 v = value;
    if (bpf_map_update_elem(map_fd, &key, &v, BPF_ANY) != 0) return fail("bpf_map_update_elem");
    return 0;
}

static int with_object(const char* obj_path, const char* pin_root, unsigned long long value) {
    LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = pin_root);
    struct bpf_object* obj = bpf_object__open_file(obj_path, &opts);
    if (obj == NULL) return fail("bpf_object__open_file");
    int rc = 1;
    if (bpf_object__load(obj) != 0) {
        fail("bpf_object__load");
    } else {
        struct bpf_map* map = bpf_object__find_map_by_name(obj, "counters");
        if (map == NULL) {
            fail("no map 'counters'");
        } else if (!bpf_map__is_pinned(map)) {
            errno = EINVAL;
            fail("map 'counters' is not pinned");
        } else {
            rc = report_and_store(bpf_map__fd(map), value);
        }
    }
    bpf_object__close(obj);
    return rc;
}

static int with_api(const char* pin_root, unsigned long long value) {
    char path[4096];
    snprintf(path, sizeof path, "%s/counters", pin_root);
    int fd = bpf_obj_get(path);
    if (fd < 0 && errno == ENOENT) {
        fd = bpf_map_create(BPF_MAP_TYPE_HASH, "counters", 4, 8, 16, NULL);
        if (fd < 0) return fail("bpf_map_create");
        if (bpf_obj_pin(fd, path) != 0) return fail("bpf_obj_pin");
    } else if (fd < 0) {
        return fail("bpf_obj_get");
    }
    int rc = report_and_store(fd, value);
    close(fd);
    return rc;
}

int main(int argc, char** argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: libbpf_pin {OBJ | --api} PIN_ROOT VALUE\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    unsigned long long value = strtoull(argv[3], NULL, 0);
    if (strcmp(argv[1], "--api") == 0) return with_api(argv[2], value);
    return with_object(argv[1], argv[2], value);
}
