// SPDX-License-Identifier: GPL-2.0-or-later
// preload_probe: makes the calls the shim interposes, exactly as an unmodified program would
// (libc's syscall(__NR_bpf, ...), statfs, statfs64, fstatfs, fstatfs64), and prints what came
// back, one line per command, so that the tests can compare runs with and without the shim and
// against a real kernel bpffs. Errors print as errno names (EPERM), results as "ok ...".
//   probe pin PATH             create a hash map (key 4, value 8, 16 entries) and pin it
//   probe pin-fd FD PATH       pin fd FD as it is (a closed or non-bpf fd)
//   probe get PATH [FLAGS]     BPF_OBJ_GET (file_flags FLAGS); prints "ok id=N", and
//                              " read-only" / " write-only" for an fd that is not O_RDWR
//   probe get-at DIR PATH FLAGS   the same with path_fd an O_PATH fd of DIR (attr up to path_fd)
//   probe statfs PATH          f_type from statfs, statfs64, O_PATH+fstatfs, O_PATH+fstatfs64
//   probe untouched PATH       calls the shim must pass on untouched: errno kept, EFAULT, ...
//   probe stress MNT_OBJ OTHER_DIR THREADS ROUNDS   gets and statfs from many threads at once
//   probe noalloc KERNEL_OBJ MNT_DIR OTHER_DIR      counts the allocations (malloc & co. are
//                              wrapped here) of calls the shim does not serve: must be 0
// With $PROBE_UID, pin and get are made as that user (the map is created first, as root).
// Exit status: 0 when the command ran (whatever errno it printed), 1 on a check that failed
// inside the program (untouched, stress), 2 on usage errors.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/bpf.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

// Every allocation in the process (the shim's included: the executable's definitions come
// first) is counted, then done by glibc's own allocator.
extern void* __libc_malloc(size_t);
extern void* __libc_calloc(size_t, size_t);
extern void* __libc_realloc(void*, size_t);
extern void* __libc_memalign(size_t, size_t);
extern void __libc_free(void*);
static atomic_long allocations;

void* malloc(size_t n) {
    atomic_fetch_add(&allocations, 1);
    return __libc_malloc(n);
}
void* calloc(size_t n, size_t size) {
    atomic_fetch_add(&allocations, 1);
    return __libc_calloc(n, size);
}
void* realloc(void* p, size_t n) {
    atomic_fetch_add(&allocations, 1);
    return __libc_realloc(p, n);
}
void* memalign(size_t align, size_t n) {
    atomic_fetch_add(&allocations, 1);
    return __libc_memalign(align, n);
}
void* aligned_alloc(size_t align, size_t n) { return memalign(align, n); }
int posix_memalign(void** out, size_t align, size_t n) {
    void* p = memalign(align, n);
    if (p == NULL) return ENOMEM;
    *out = p;
    return 0;
}
void free(void* p) { __libc_free(p); }

static long sys_bpf(int cmd, union bpf_attr* attr, unsigned size) {
    return syscall(__NR_bpf, cmd, attr, size);
}

static const char* errname(int e) {
    const char* n = strerrorname_np(e);
    return n != NULL ? n : "E?";
}

// libbpf 1.1's attr size for BPF_OBJ_PIN / BPF_OBJ_GET: up to and including file_flags.
#define OBJ_ATTR_SIZE 16

static int map_create(void) {
    union bpf_attr a;
    memset(&a, 0, sizeof a);
    a.map_type = BPF_MAP_TYPE_HASH;
    a.key_size = 4;
    a.value_size = 8;
    a.max_entries = 16;
    return (int)sys_bpf(BPF_MAP_CREATE, &a, sizeof a);
}

static unsigned map_id(int fd) {
    struct bpf_map_info info;
    memset(&info, 0, sizeof info);
    union bpf_attr a;
    memset(&a, 0, sizeof a);
    a.info.bpf_fd = (unsigned)fd;
    a.info.info_len = sizeof info;
    a.info.info = (uint64_t)(uintptr_t)&info;
    if (sys_bpf(BPF_OBJ_GET_INFO_BY_FD, &a, sizeof a) != 0) return 0;
    return info.id;
}

static int pin_fd(int fd, const char* path) {
    union bpf_attr a;
    memset(&a, 0, sizeof a);
    a.pathname = (uint64_t)(uintptr_t)path;
    a.bpf_fd = (unsigned)fd;
    errno = 0;
    if (sys_bpf(BPF_OBJ_PIN, &a, OBJ_ATTR_SIZE) != 0) {
        printf("%s\n", errname(errno));
    } else {
        printf("ok\n");
    }
    return 0;
}

static void drop_privileges(void);

static int cmd_pin(const char* path) {
    int fd = map_create();
    if (fd < 0) {
        printf("map_create: %s\n", errname(errno));
        return 1;
    }
    drop_privileges();
    pin_fd(fd, path);
    close(fd);
    return 0;
}

// With `dir`, path_fd (at offset 16, after file_flags: Linux 6.5's layout, which Debian 12's
// <linux/bpf.h> lacks) is an O_PATH fd of it.
static int cmd_get(const char* dir, const char* path, unsigned flags) {
    int dfd = dir != NULL ? open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC) : -1;
    if (dir != NULL && dfd < 0) {
        printf("open %s: %s\n", dir, errname(errno));
        return 1;
    }
    drop_privileges();
    union bpf_attr a;
    memset(&a, 0, sizeof a);
    a.pathname = (uint64_t)(uintptr_t)path;
    a.file_flags = flags;
    if (dfd >= 0) memcpy((char*)&a + 16, &dfd, sizeof dfd);
    int fd = (int)sys_bpf(BPF_OBJ_GET, &a, dfd >= 0 ? OBJ_ATTR_SIZE + 4 : OBJ_ATTR_SIZE);
    if (dfd >= 0) close(dfd);
    if (fd < 0) {
        printf("%s\n", errname(errno));
        return 0;
    }
    int cloexec = (fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0;
    int acc = fcntl(fd, F_GETFL) & O_ACCMODE;
    printf("ok id=%u%s%s\n", map_id(fd),
           acc == O_RDONLY   ? " read-only"
           : acc == O_WRONLY ? " write-only"
                             : "",
           cloexec ? "" : " (not close-on-exec)");
    close(fd);
    return 0;
}

static void print_type(const char* what, int r, long type) {
    if (r != 0) {
        printf("%s %s\n", what, errname(errno));
    } else {
        printf("%s 0x%lx\n", what, type);
    }
}

static int cmd_statfs(const char* path) {
    struct statfs s;
    struct statfs64 s64;
    memset(&s, 0, sizeof s);
    memset(&s64, 0, sizeof s64);
    int r = statfs(path, &s);
    print_type("statfs", r, (long)s.f_type);
    r = statfs64(path, &s64);
    print_type("statfs64", r, (long)s64.f_type);
    int fd = open(path, O_PATH | O_CLOEXEC);
    if (fd < 0) {
        printf("open %s\n", errname(errno));
        return 0;
    }
    memset(&s, 0, sizeof s);
    memset(&s64, 0, sizeof s64);
    r = fstatfs(fd, &s);
    print_type("fstatfs", r, (long)s.f_type);
    r = fstatfs64(fd, &s64);
    print_type("fstatfs64", r, (long)s64.f_type);
    close(fd);
    return 0;
}

static int failures;

// Call with the result of the expression under test; errno is read right after it.
static void check(int ok, const char* what) {
    int e = errno;
    if (!ok) {
        printf("FAIL: %s (errno %s)\n", what, errname(e));
        ++failures;
    }
}

// Calls that must behave as they do without the shim. PATH is an existing directory on a
// bpffs-fuse mount, where the shim does act on pins and gets.
static int cmd_untouched(const char* path) {
    // A successful call leaves errno alone; a failed one sets the kernel's errno.
    errno = 4242;
    check(syscall(__NR_getpid) == getpid() && errno == 4242, "getpid keeps errno");
    struct statfs s;
    errno = 4242;
    check(statfs(path, &s) == 0 && errno == 4242, "statfs on the mount keeps errno");
    check(statfs("/nonexistent/x", &s) == -1 && errno == ENOENT, "statfs ENOENT");
    check(fstatfs(-1, &s) == -1 && errno == EBADF, "fstatfs EBADF");
    // All six arguments reach the kernel (mmap takes six).
    void* m = (void*)syscall(__NR_mmap, NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    check(m != MAP_FAILED, "mmap with six arguments");
    if (m != MAP_FAILED) munmap(m, 4096);
    // bpf(2) calls that are not ours keep the kernel's answers.
    int fd = map_create();
    check(fd >= 0, "BPF_MAP_CREATE goes to the kernel");
    check(fd >= 0 && map_id(fd) != 0, "BPF_OBJ_GET_INFO_BY_FD goes to the kernel");
    union bpf_attr a;
    memset(&a, 0, sizeof a);
    errno = 0;
    check(sys_bpf(BPF_OBJ_GET, (union bpf_attr*)8, OBJ_ATTR_SIZE) == -1 && errno == EFAULT,
          "BPF_OBJ_GET with a bad attr pointer: EFAULT");
    a.pathname = 8;
    check(sys_bpf(BPF_OBJ_GET, &a, OBJ_ATTR_SIZE) == -1 && errno == EFAULT,
          "BPF_OBJ_GET with a bad path pointer: EFAULT");
    a.bpf_fd = (unsigned)fd;
    check(sys_bpf(BPF_OBJ_PIN, &a, OBJ_ATTR_SIZE) == -1 && errno == EFAULT,
          "BPF_OBJ_PIN with a bad path pointer: EFAULT");
    a.bpf_fd = 0;
    a.pathname = (uint64_t)(uintptr_t)path;
    check(sys_bpf(BPF_OBJ_GET, &a, 8192) == -1 && errno == E2BIG, "attr size 8192: E2BIG");
    if (fd >= 0) close(fd);
    printf("%s\n", failures == 0 ? "ok" : "failed");
    return failures == 0 ? 0 : 1;
}

struct stress_arg {
    const char* obj;
    const char* other;
    unsigned want_id;
    long other_type;
    int rounds;
    int errors;
};

static void* stress_thread(void* p) {
    struct stress_arg* s = p;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", s->obj);
    *strrchr(dir, '/') = '\0';
    for (int i = 0; i < s->rounds; ++i) {
        union bpf_attr a;
        memset(&a, 0, sizeof a);
        a.pathname = (uint64_t)(uintptr_t)s->obj;
        int fd = (int)sys_bpf(BPF_OBJ_GET, &a, OBJ_ATTR_SIZE);
        if (fd < 0 || map_id(fd) != s->want_id) ++s->errors;
        if (fd >= 0) close(fd);
        struct statfs st;
        if (statfs(dir, &st) != 0 || st.f_type != 0xcafe4a11) ++s->errors;
        if (statfs(s->other, &st) != 0 || st.f_type != s->other_type) ++s->errors;
    }
    return NULL;
}

static int cmd_stress(const char* obj, const char* other, int threads, int rounds) {
    union bpf_attr a;
    memset(&a, 0, sizeof a);
    a.pathname = (uint64_t)(uintptr_t)obj;
    int fd = (int)sys_bpf(BPF_OBJ_GET, &a, OBJ_ATTR_SIZE);
    struct statfs st;
    if (fd < 0 || statfs(other, &st) != 0) {
        printf("setup: %s\n", errname(errno));
        return 1;
    }
    struct stress_arg arg[64];
    pthread_t tid[64];
    if (threads > 64) threads = 64;
    for (int i = 0; i < threads; ++i) {
        arg[i] = (struct stress_arg){obj, other, map_id(fd), (long)st.f_type, rounds, 0};
        if (pthread_create(&tid[i], NULL, stress_thread, &arg[i]) != 0) return 1;
    }
    int errors = 0;
    for (int i = 0; i < threads; ++i) {
        pthread_join(tid[i], NULL);
        errors += arg[i].errors;
    }
    close(fd);
    printf("%s (%d errors in %d calls)\n", errors == 0 ? "ok" : "failed", errors,
           threads * rounds * 3);
    return errors == 0 ? 0 : 1;
}

// With $PROBE_UID set, the probe drops to that uid (and gid, no groups) once the map exists:
// pins and gets are then made by an unprivileged user, with a map root created.
static void drop_privileges(void) {
    const char* uid = getenv("PROBE_UID");
    if (uid == NULL) return;
    unsigned id = (unsigned)strtoul(uid, NULL, 10);
    if (setgroups(0, NULL) != 0 || setresgid(id, id, id) != 0 || setresuid(id, id, id) != 0) {
        printf("drop to uid %u: %s\n", id, errname(errno));
        exit(1);
    }
}

// The calls the shim sees but does not serve, in a loop: other system calls, bpf commands,
// BPF_OBJ_GET on a kernel bpffs, statfs on the mount and elsewhere, fstatfs on the mount.
static void unserved_calls(const char* kernel_obj, const char* mnt_dir, const char* other) {
    union bpf_attr a;
    memset(&a, 0, sizeof a);
    a.pathname = (uint64_t)(uintptr_t)kernel_obj;
    int fd = (int)sys_bpf(BPF_OBJ_GET, &a, OBJ_ATTR_SIZE);
    if (fd >= 0) close(fd);
    memset(&a, 0, sizeof a);
    a.pathname = (uint64_t)(uintptr_t) "/nonexistent";
    sys_bpf(BPF_OBJ_GET, &a, OBJ_ATTR_SIZE);
    sys_bpf(BPF_PROG_GET_NEXT_ID, &a, sizeof a);
    syscall(__NR_getpid);
    struct statfs s;
    statfs(mnt_dir, &s);
    statfs(other, &s);
    statfs64(other, (struct statfs64*)&s);
    int dfd = open(mnt_dir, O_PATH | O_CLOEXEC);
    fstatfs(dfd, &s);
    close(dfd);
}

static int cmd_noalloc(const char* kernel_obj, const char* mnt_dir, const char* other) {
    unserved_calls(kernel_obj, mnt_dir, other);  // warm up (lazy binding)
    long before = atomic_load(&allocations);
    for (int i = 0; i < 100; ++i) unserved_calls(kernel_obj, mnt_dir, other);
    long n = atomic_load(&allocations) - before;
    printf("%ld allocations\n", n);
    return n == 0 ? 0 : 1;
}

int main(int argc, char** argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 3 && strcmp(argv[1], "pin") == 0) return cmd_pin(argv[2]);
    if (argc == 4 && strcmp(argv[1], "pin-fd") == 0) return pin_fd(atoi(argv[2]), argv[3]);
    if (argc == 3 && strcmp(argv[1], "get") == 0) return cmd_get(NULL, argv[2], 0);
    if (argc == 4 && strcmp(argv[1], "get") == 0)
        return cmd_get(NULL, argv[2], (unsigned)strtoul(argv[3], NULL, 0));
    if (argc == 5 && strcmp(argv[1], "get-at") == 0)
        return cmd_get(argv[2], argv[3], (unsigned)strtoul(argv[4], NULL, 0));
    if (argc == 3 && strcmp(argv[1], "statfs") == 0) return cmd_statfs(argv[2]);
    if (argc == 3 && strcmp(argv[1], "untouched") == 0) return cmd_untouched(argv[2]);
    if (argc == 5 && strcmp(argv[1], "noalloc") == 0) return cmd_noalloc(argv[2], argv[3], argv[4]);
    if (argc == 6 && strcmp(argv[1], "stress") == 0)
        return cmd_stress(argv[2], argv[3], atoi(argv[4]), atoi(argv[5]));
    fprintf(stderr,
            "usage: probe {pin PATH | pin-fd FD PATH | get PATH [FLAGS] | get-at DIR PATH FLAGS |"
            " statfs PATH |"
            " untouched DIR | stress OBJ OTHER THREADS ROUNDS |"
            " noalloc KERNEL_OBJ MNT_DIR OTHER_DIR}\n");
    return 2;
}
