// SPDX-License-Identifier: GPL-2.0-or-later
// An attacker's FUSE filesystem for the broker's tests (issue 19): one file, "f" (ino 2, 0666),
// whose lookup and open are answered and whose FLUSH, STATFS and, once it was opened, GETATTR
// are read and never answered. Closing an fd of "f" blocks the closing thread until the
// connection is aborted or this process dies. Nothing is cached (timeouts 0).
//   stuck_fuse MOUNTPOINT   (foreground; mounted with allow_other; SIGTERM ends it)
#define FUSE_USE_VERSION 314
#include <fuse3/fuse_lowlevel.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static int opened;

static void fill(fuse_ino_t ino, struct stat* st) {
    memset(st, 0, sizeof *st);
    st->st_ino = ino;
    st->st_nlink = 1;
    st->st_mode = ino == FUSE_ROOT_ID ? S_IFDIR | 0755 : S_IFREG | 0666;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
    if (parent != FUSE_ROOT_ID || strcmp(name, "f") != 0) {
        fuse_reply_err(req, ENOENT);
        return;
    }
    struct fuse_entry_param e;
    memset(&e, 0, sizeof e);
    e.ino = 2;
    fill(2, &e.attr);
    fuse_reply_entry(req, &e);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info* fi) {
    (void)fi;
    if (ino == 2 && opened) return;  // never answered
    struct stat st;
    fill(ino, &st);
    fuse_reply_attr(req, &st, 0);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info* fi) {
    (void)ino;
    opened = 1;
    fuse_reply_open(req, fi);
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info* fi) {
    (void)req, (void)ino, (void)fi;  // never answered
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino) {
    (void)req, (void)ino;  // never answered
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info* fi) {
    (void)ino, (void)fi;
    fuse_reply_err(req, 0);
}

static const struct fuse_lowlevel_ops ops = {
    .lookup = op_lookup,
    .getattr = op_getattr,
    .open = op_open,
    .flush = op_flush,
    .statfs = op_statfs,
    .release = op_release,
};

int main(int argc, char** argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: stuck_fuse MOUNTPOINT\n");
        return 2;
    }
    char* args[] = {argv[0], "-o", "allow_other,fsname=stuck,subtype=stuck", NULL};
    struct fuse_args fa = FUSE_ARGS_INIT(3, args);
    struct fuse_session* se = fuse_session_new(&fa, &ops, sizeof ops, NULL);
    if (se == NULL || fuse_set_signal_handlers(se) != 0 || fuse_session_mount(se, argv[1]) != 0)
        return 1;
    int r = fuse_session_loop(se);
    fuse_session_unmount(se);
    fuse_remove_signal_handlers(se);
    fuse_session_destroy(se);
    return r < 0 ? 1 : 0;
}
