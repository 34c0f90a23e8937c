/* iorand: 4 KiB random reads from a block device with O_DIRECT, for bench/io.ts, which runs it
 * inside the default Debian guest (added to its initramfs) under Ringvisor and under QEMU (TCG)
 * against the same virtio-blk disk image, and compares what the guest itself measured.
 *
 * Usage:
 *   iorand DEVICE READS [SPAN_MIB [WARMUP [SEED]]]
 *     Opens DEVICE with O_RDONLY | O_DIRECT and does WARMUP (default 100, not counted), then READS
 *     pread()s of 4096 bytes each into one page-aligned buffer, at 4 KiB-aligned offsets drawn
 *     uniformly over the first SPAN_MIB MiB of the device (0, the default: all of it) by a
 *     fixed-seed xorshift64 (SEED, default 1: the same offsets on every system). One read at a time (queue depth 1): each is timed alone with
 *     clock_gettime(CLOCK_MONOTONIC) around the pread(). Prints one line:
 *       iorand reads N bytes 4096 seconds S iops X median_us M p99_us P min_us A max_us B mean_us C sum HEX16
 *     where S is the wall time of the READS reads (IOPS = N / S) and sum is a checksum of the
 *     data read (the same disk contents give the same sum).
 *   iorand clock
 *     Prints CLOCK_MONOTONIC in seconds with nanoseconds, for timing other commands (dd).
 *
 * Exit status 0, or 1 with a message on stderr when the device cannot be opened or a read
 * fails or comes back short. Build: riscv64-linux-gnu-gcc -static -O2. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>
#include <linux/fs.h>

#define BLOCK 4096

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t rng;
static uint64_t xorshift(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The q-quantile of n sorted values (nearest rank). */
static double quantile(const double *s, unsigned n, double q) {
    unsigned i = (unsigned)(q * n + 0.999999);
    if (i < 1) i = 1;
    if (i > n) i = n;
    return s[i - 1];
}

static int read_one(int fd, void *buf, uint64_t blocks, const char *dev) {
    off_t off = (off_t)(xorshift() % blocks) * BLOCK;
    ssize_t r = pread(fd, buf, BLOCK, off);
    if (r != BLOCK) {
        fprintf(stderr, "iorand: pread of %d bytes at %lld from %s: %s\n", BLOCK, (long long)off, dev,
                r < 0 ? strerror(errno) : "short read");
        return -1;
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 2 && strcmp(argv[1], "clock") == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        printf("%lld.%09ld\n", (long long)ts.tv_sec, ts.tv_nsec);
        return 0;
    }
    if (argc < 3) {
        fprintf(stderr, "usage: iorand DEVICE READS [SPAN_MIB [WARMUP [SEED]]] | iorand clock\n");
        return 1;
    }
    const char *dev = argv[1];
    unsigned n = (unsigned)strtoul(argv[2], NULL, 10);
    uint64_t span = argc > 3 ? strtoull(argv[3], NULL, 10) << 20 : 0;
    unsigned warm = argc > 4 ? (unsigned)strtoul(argv[4], NULL, 10) : 100;
    rng = argc > 5 ? strtoull(argv[5], NULL, 10) : 1;
    if (rng == 0) rng = 1;
    if (n == 0) {
        fprintf(stderr, "iorand: READS must be at least 1\n");
        return 1;
    }
    int fd = open(dev, O_RDONLY | O_DIRECT);
    if (fd < 0) {
        fprintf(stderr, "iorand: cannot open %s with O_DIRECT: %s\n", dev, strerror(errno));
        return 1;
    }
    uint64_t bytes = 0;
    if (ioctl(fd, BLKGETSIZE64, &bytes) != 0) {
        off_t end = lseek(fd, 0, SEEK_END);
        bytes = end > 0 ? (uint64_t)end : 0;
    }
    if (span != 0 && span < bytes) bytes = span;
    uint64_t blocks = bytes / BLOCK;
    if (blocks == 0) {
        fprintf(stderr, "iorand: %s is smaller than one 4 KiB block\n", dev);
        return 1;
    }
    void *buf;
    if (posix_memalign(&buf, BLOCK, BLOCK) != 0) {
        fprintf(stderr, "iorand: out of memory\n");
        return 1;
    }
    double *lat = malloc(sizeof *lat * n);
    if (lat == NULL) {
        fprintf(stderr, "iorand: out of memory (%u latencies)\n", n);
        return 1;
    }
    memset(lat, 0, sizeof *lat * n); /* touch every page before the clock starts */
    for (unsigned i = 0; i < warm; i++)
        if (read_one(fd, buf, blocks, dev) != 0) return 1;

    uint64_t sum = 0;
    double t0 = now();
    for (unsigned i = 0; i < n; i++) {
        double a = now();
        if (read_one(fd, buf, blocks, dev) != 0) return 1;
        double b = now();
        lat[i] = b - a;
        const uint64_t *w = buf;
        sum = (sum ^ w[i % (BLOCK / 8)]) * 0x100000001b3u + w[0];
    }
    double total = now() - t0;

    double mean = 0;
    for (unsigned i = 0; i < n; i++) mean += lat[i];
    mean /= n;
    qsort(lat, n, sizeof *lat, cmp);
    printf("iorand reads %u bytes %d seconds %.6f iops %.1f median_us %.1f p99_us %.1f min_us %.1f max_us %.1f mean_us %.1f sum %016llx\n",
           n, BLOCK, total, n / total, quantile(lat, n, 0.5) * 1e6, quantile(lat, n, 0.99) * 1e6, lat[0] * 1e6,
           lat[n - 1] * 1e6, mean * 1e6, (unsigned long long)sum);
    close(fd);
    return 0;
}
