/* userland: what an ordinary Linux program may ask of the counters, run from the default
 * guest's shell (test/system/userland.test.ts; issue 8).
 *
 *  - clock_gettime(CLOCK_MONOTONIC) in a loop: glibc answers it in the vDSO, which reads the
 *    time CSR in U-mode; that needs scounteren.TM, which only the firmware (at hart start) or
 *    the kernel's SBI PMU driver sets.  The clock must never go back and must advance.
 *  - perf_event_open(PERF_COUNT_HW_INSTRUCTIONS, and CPU_CYCLES) around a loop of known length:
 *    the kernel's SBI PMU driver programs minstret through the firmware and reads it back.
 *    Kernel and user are both counted: without Sscofpmf the PMU cannot exclude either.
 *  - rdtime, rdcycle and rdinstret straight from U-mode: Linux's PMU driver leaves only TM set in
 *    scounteren (kernel.perf_user_access = 1), so cycle and instret raise SIGILL.
 *
 * Prints "key: value" lines and ends with "userland: done"; the test decides what is right. */
#define _GNU_SOURCE
#include <linux/perf_event.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define LOOP_ITERATIONS 10000000UL
/* addi + bnez per iteration, plus the li: 2 * LOOP_ITERATIONS + 1 instructions */
#define LOOP_INSTRUCTIONS (2 * LOOP_ITERATIONS + 1)
#define CLOCK_CALLS 100000

static void counted_loop(void)
{
    unsigned long n = LOOP_ITERATIONS;
    __asm__ volatile(".option push\n.option norvc\n"
                     "1: addi %0, %0, -1\n"
                     "bnez %0, 1b\n"
                     ".option pop\n"
                     : "+r"(n));
}

static int64_t ns(const struct timespec *t) { return (int64_t)t->tv_sec * 1000000000 + t->tv_nsec; }

static int64_t monotonic(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return ns(&t);
}

static void test_clock(void)
{
    printf("vdso: %s\n", getauxval(AT_SYSINFO_EHDR) ? "yes" : "no");
    int64_t first = monotonic(), prev = first;
    long backwards = 0;
    for (int i = 0; i < CLOCK_CALLS; i++) {
        int64_t t = monotonic();
        if (t < prev)
            backwards++;
        prev = t;
    }
    printf("clock calls: %d\n", CLOCK_CALLS);
    printf("clock backwards: %ld\n", backwards);
    printf("clock advanced ns: %lld\n", (long long)(prev - first));
}

static long perf_open(uint64_t config)
{
    struct perf_event_attr a;
    memset(&a, 0, sizeof a);
    a.size = sizeof a;
    a.type = PERF_TYPE_HARDWARE;
    a.config = config;
    a.disabled = 1;
    return syscall(SYS_perf_event_open, &a, 0, -1, -1, 0);
}

/* The count of one event over one run of the loop, or -1 (errno printed). */
static long long count_loop(const char *name, uint64_t config, int64_t *elapsed)
{
    long fd = perf_open(config);
    if (fd < 0) {
        printf("perf %s: perf_event_open failed: %m\n", name);
        return -1;
    }
    ioctl(fd, PERF_EVENT_IOC_RESET, 0);
    int64_t t0 = monotonic();
    ioctl(fd, PERF_EVENT_IOC_ENABLE, 0);
    counted_loop();
    ioctl(fd, PERF_EVENT_IOC_DISABLE, 0);
    *elapsed = monotonic() - t0;
    long long v = -1;
    if (read(fd, &v, sizeof v) != sizeof v)
        printf("perf %s: read failed: %m\n", name);
    close(fd);
    return v;
}

static void test_perf(void)
{
    int64_t elapsed;
    printf("loop instructions: %lu\n", LOOP_INSTRUCTIONS);
    long long n = count_loop("instructions", PERF_COUNT_HW_INSTRUCTIONS, &elapsed);
    printf("perf instructions: %lld\n", n);
    printf("loop ns: %lld\n", (long long)elapsed);
    printf("perf cycles: %lld\n", count_loop("cycles", PERF_COUNT_HW_CPU_CYCLES, &elapsed));
}

static sigjmp_buf env;

static void on_sigill(int sig)
{
    (void)sig;
    siglongjmp(env, 1);
}

#define U_READ(label, insn)                                                  \
    do {                                                                     \
        unsigned long v = 0;                                                 \
        if (sigsetjmp(env, 1) == 0) {                                        \
            __asm__ volatile(insn " %0" : "=r"(v));                          \
            printf("%s: %s\n", label, v ? "reads" : "reads 0");              \
        } else {                                                             \
            printf("%s: SIGILL\n", label);                                   \
        }                                                                    \
    } while (0)

static void test_user_counters(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigill;
    sigaction(SIGILL, &sa, NULL);
    U_READ("rdtime", "rdtime");
    U_READ("rdcycle", "rdcycle");
    U_READ("rdinstret", "rdinstret");
}

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    test_clock();
    test_perf();
    test_user_counters();
    printf("userland: done\n");
    return 0;
}
