/* SPDX-License-Identifier: GPL-2.0-or-later
 * One try of the user-namespace race against the broker (tests/broker_test.cpp, privilege):
 * a root process that lost CAP_SYS_ADMIN sends a request and enters a new user namespace
 * (where it has every capability) right after. A separate program, never sanitized: a
 * sanitizer runtime's own thread would make unshare(CLONE_NEWUSER) fail.
 *
 *   userns_racer SOCKET HEX_MESSAGE [FD...]
 * Sends the message (hex) with the inherited FDs, unshares, reads the reply. Exit status: the
 * reply's errno (0: granted), 200+ for a failure of the program itself. */
#define _GNU_SOURCE
#include <linux/capability.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

static int drop_sys_admin(void) {
    struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[2];
    if (prctl(PR_CAPBSET_DROP, CAP_SYS_ADMIN, 0, 0, 0) != 0) return -1;
    if (syscall(SYS_capget, &hdr, data) != 0) return -1;
    data[0].effective &= ~(1u << CAP_SYS_ADMIN);
    data[0].permitted &= ~(1u << CAP_SYS_ADMIN);
    data[0].inheritable &= ~(1u << CAP_SYS_ADMIN);
    return (int)syscall(SYS_capset, &hdr, data);
}

int main(int argc, char** argv) {
    if (argc < 3 || drop_sys_admin() != 0) return 200;
    unsigned char msg[4096];
    size_t len = strlen(argv[2]) / 2;
    if (len > sizeof msg) return 201;
    for (size_t i = 0; i < len; ++i) {
        char byte[3] = {argv[2][2 * i], argv[2][2 * i + 1], 0};
        msg[i] = (unsigned char)strtoul(byte, NULL, 16);
    }
    int fds[2], nfds = 0;
    for (int i = 3; i < argc && nfds < 2; ++i) fds[nfds++] = atoi(argv[i]);

    int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (s < 0 || strlen(argv[1]) >= sizeof addr.sun_path) return 202;
    strcpy(addr.sun_path, argv[1]);
    if (connect(s, (struct sockaddr*)&addr, sizeof addr) != 0) return 203;

    struct iovec iov = {msg, len};
    union {
        char buf[CMSG_SPACE(sizeof fds)];
        struct cmsghdr align;
    } control;
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
    if (nfds > 0) {
        m.msg_control = control.buf;
        m.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
        struct cmsghdr* c = CMSG_FIRSTHDR(&m);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
    }
    if (sendmsg(s, &m, 0) != (ssize_t)len) return 204;
    if (unshare(CLONE_NEWUSER) != 0) return 205;
    unsigned char reply[4096];
    ssize_t n = recv(s, reply, sizeof reply, 0);
    if (n < 16) return 206;
    uint32_t error;
    memcpy(&error, reply + 8, sizeof error);
    return error > 199 ? 207 : (int)error;
}
