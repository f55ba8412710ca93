// SPDX-License-Identifier: GPL-2.0-or-later
// libbpf_link: an ordinary libbpf program that keeps a BPF link by pinning it, run under the
// shim by the links test.
//   libbpf_link OBJ CGROUP PATH   load OBJ (cgroup_link.bpf.o), attach its program to the cgroup
//                                 directory CGROUP (bpf_program__attach_cgroup: a BPF link),
//                                 bpf_link__pin it at PATH (libbpf checks statfs for the bpf
//                                 magic first), then bpf_link__open PATH (BPF_OBJ_GET) and print
//                                 "pinned=N opened=M": the ids of the link pinned and fetched
//   libbpf_link --open PATH       bpf_link__open PATH and print the link's id
// Closing a link's fd does not detach it while a pin holds it. Exit status 0, or 1 with the
// failing call and errno on stderr.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int fail(const char* what) {
    int e = errno;
    fprintf(stderr, "libbpf_link: %s: %s\n", what, strerror(e));
    return 1;
}

// The kernel id of the link behind `link`, 0 on failure (errno set).
static unsigned link_id(struct bpf_link* link) {
    struct bpf_link_info info;
    __u32 len = sizeof info;
    memset(&info, 0, sizeof info);
    if (bpf_obj_get_info_by_fd(bpf_link__fd(link), &info, &len) != 0) return 0;
    return info.id;
}

static int open_pinned(const char* path, unsigned* id) {
    struct bpf_link* link = bpf_link__open(path);
    if (link == NULL) return fail("bpf_link__open");
    *id = link_id(link);
    bpf_link__destroy(link);  // closes the fd: the pin holds the link
    return *id ? 0 : fail("bpf_obj_get_info_by_fd");
}

static int attach_and_pin(struct bpf_object* obj, const char* cgroup, const char* path) {
    struct bpf_program* prog = bpf_object__next_program(obj, NULL);
    if (prog == NULL) return fail("no program in the object");
    int cg = open(cgroup, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (cg < 0) return fail(cgroup);
    struct bpf_link* link = bpf_program__attach_cgroup(prog, cg);
    close(cg);
    if (link == NULL) return fail("bpf_program__attach_cgroup");
    int rc = 1;
    unsigned pinned = link_id(link), opened = 0;
    if (pinned == 0) {
        fail("bpf_obj_get_info_by_fd");
    } else if (bpf_link__pin(link, path) != 0) {
        fail("bpf_link__pin");
    } else if (open_pinned(path, &opened) == 0) {
        printf("pinned=%u opened=%u\n", pinned, opened);
        rc = 0;
    }
    bpf_link__destroy(link);
    return rc;
}

int main(int argc, char** argv) {
    if (argc == 3 && strcmp(argv[1], "--open") == 0) {
        unsigned id = 0;
        if (open_pinned(argv[2], &id) != 0) return 1;
        printf("%u\n", id);
        return 0;
    }
    if (argc != 4) {
        fprintf(stderr, "usage: libbpf_link OBJ CGROUP PATH | libbpf_link --open PATH\n");
        return 2;
    }
    struct bpf_object* obj = bpf_object__open_file(argv[1], NULL);
    if (obj == NULL) return fail("bpf_object__open_file");
    int rc = bpf_object__load(obj) == 0 ? attach_and_pin(obj, argv[2], argv[3])
                                        : fail("bpf_object__load");
    bpf_object__close(obj);
    return rc;
}
