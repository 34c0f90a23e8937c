/* tcpsend: guest-to-host TCP throughput, for bench/io.ts, which runs it inside the default Debian
 * guest (added to its initramfs) under Ringvisor and under QEMU (TCG), each with user-mode
 * networking, against a sink on the host's loopback (10.0.2.2 from the guest in both).
 *
 * Usage:
 *   tcpsend ADDRESS PORT MIB
 *     Connects to ADDRESS:PORT, writes MIB MiB (a byte pattern, in 64 KiB writes), shuts its
 *     side down and reads the host's answer until the host closes: the number of bytes the host
 *     received, as decimal text. The time runs from the connection's establishment to that close,
 *     so every byte has reached the host. Prints one line:
 *       tcpsend bytes N seconds S mbps X received R
 *     (mbps: 10^6 bytes per second).
 *
 * Exit status 0, or 1 with a message on stderr. Build: riscv64-linux-gnu-gcc -static -O2. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CHUNK 65536

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int fail(const char *what) {
    fprintf(stderr, "tcpsend: %s: %s\n", what, strerror(errno));
    return 1;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: tcpsend ADDRESS PORT MIB\n");
        return 1;
    }
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)atoi(argv[2]));
    if (inet_pton(AF_INET, argv[1], &sa.sin_addr) != 1) {
        fprintf(stderr, "tcpsend: %s is not an IPv4 address\n", argv[1]);
        return 1;
    }
    long long total = atoll(argv[3]) * 1024 * 1024;
    static char buf[CHUNK];
    for (int i = 0; i < CHUNK; i++) buf[i] = (char)(i * 131 + 7);

    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return fail("socket");
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) return fail("connect");
    double t0 = now();
    long long sent = 0;
    while (sent < total) {
        size_t n = total - sent < CHUNK ? (size_t)(total - sent) : CHUNK;
        ssize_t w = write(fd, buf, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return fail("write");
        }
        sent += w;
    }
    if (shutdown(fd, SHUT_WR) != 0) return fail("shutdown");
    char answer[64];
    size_t got = 0;
    for (;;) {
        ssize_t r = read(fd, answer + got, sizeof answer - 1 - got);
        if (r < 0) {
            if (errno == EINTR) continue;
            return fail("read");
        }
        if (r == 0 || got + (size_t)r >= sizeof answer - 1) {
            got += (size_t)(r > 0 ? r : 0);
            break;
        }
        got += (size_t)r;
    }
    double t1 = now();
    answer[got] = 0;
    close(fd);
    double s = t1 - t0;
    printf("tcpsend bytes %lld seconds %.6f mbps %.2f received %lld\n", sent, s, (double)sent / 1e6 / s, atoll(answer));
    return 0;
}
