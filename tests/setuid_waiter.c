/* SPDX-License-Identifier: GPL-2.0-or-later
 * A stand-in for a setuid-root program waiting at a prompt (su, passwd): the privilege tests
 * install a copy setuid root, exec it from an unprivileged process and let it wait on stdin
 * while another process tries to speak with its identity. Exits when stdin ends. */
#include <unistd.h>

int main(void) {
    char c;
    while (read(0, &c, 1) > 0) {}
    return 0;
}
