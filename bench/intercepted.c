/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The program bpffs-bench runs under each interception (bench/intercept.cpp): an unmodified,
 * dynamically linked libbpf program, so the same binary runs bare, under the preload shim and
 * under the seccomp supervisor.
 *
 *   bpffs-bench-intercepted get PATH N     N times bpf_obj_get(PATH) and close
 *   bpffs-bench-intercepted pin DIR N      N times bpf_obj_pin(map, DIR/pN) and unlink
 *
 * Prints one latency per line, in nanoseconds; on the first failure, "error: STEP: ERRNO" on
 * stderr and exit 1.
 */
#include <bpf/bpf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int fail(const char* what) {
    fprintf(stderr, "error: %s: %s\n", what, strerror(errno));
    return 1;
}

int main(int argc, char** argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: bpffs-bench-intercepted get PATH N | pin DIR N\n");
        return 2;
    }
    long n = strtol(argv[3], NULL, 10);
    int pin = strcmp(argv[1], "pin") == 0;
    int map = -1;
    if (pin) {
        map = bpf_map_create(BPF_MAP_TYPE_ARRAY, "bench_icpt", 4, 4, 1, NULL);
        if (map < 0) return fail("map create");
    }
    char path[4096];
    for (long i = 0; i < n; ++i) {
        long long t0 = now_ns();
        if (pin) {
            snprintf(path, sizeof path, "%s/p%ld", argv[2], i);
            if (bpf_obj_pin(map, path) != 0) return fail("pin");
            if (unlink(path) != 0) return fail("unlink");
        } else {
            int fd = bpf_obj_get(argv[2]);
            if (fd < 0) return fail("get");
            close(fd);
        }
        printf("%lld\n", now_ns() - t0);
    }
    return 0;
}
