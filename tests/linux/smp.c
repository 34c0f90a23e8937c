/* smp: what a multithreaded Linux program sees of an SMP guest (test/system/smp.test.ts), one
 * thread pinned to each CPU (sched_setaffinity).
 *
 *  - Time across CPUs: each thread reads CLOCK_MONOTONIC (the vDSO: the time CSR, scaled) and the
 *    time CSR itself (rdtime) in a tight loop for CLOCK_SECONDS, and publishes the highest value
 *    it read through a shared atomic.  A value read after loading the published one must not be
 *    lower than it: time read on one CPU and then on another never goes back, as with one
 *    platform timer.  Each published value carries its writer's CPU in its low bits, so the
 *    program also counts how often a thread saw a value another CPU had published (the check
 *    means something only when that happens).
 *  - A CPU-bound parallel workload with a deterministic result: the primes below PRIME_LIMIT by
 *    trial division and a hash of every number, in blocks the threads take from a shared
 *    counter; run with one thread and then with one per CPU, timed by CLOCK_MONOTONIC.
 *
 * Prints "key: value" lines and ends with "smp: done"; the test decides what is right. */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define MAX_CPUS 8
#define CLOCK_SECONDS 2
#define CPU_BITS 4 /* the writer's CPU, below the time */
#define PRIME_LIMIT 1500000
#define BLOCK 5000

static int ncpu;
static pthread_barrier_t start;

static int64_t monotonic(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static inline uint64_t rdtime(void)
{
    uint64_t t;
    __asm__ volatile("rdtime %0" : "=r"(t));
    return t;
}

static int pin(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return sched_setaffinity(0, sizeof set, &set) == 0 && sched_getcpu() == cpu;
}

/* ---- time across CPUs ---- */

struct watch {
    _Atomic uint64_t published; /* time << CPU_BITS | writer */
};

struct seen {
    unsigned long backwards, from_others;
    uint64_t worst; /* the largest step back */
};

static struct watch mono_watch, time_watch;

/* `t` read right after `p` was loaded from the watch: check it, then publish it. */
static void observe(struct watch *w, struct seen *s, uint64_t p, uint64_t t, int cpu)
{
    uint64_t seen = p >> CPU_BITS;
    if ((int)(p & ((1 << CPU_BITS) - 1)) != cpu && p != 0)
        s->from_others++;
    if (t < seen) {
        s->backwards++;
        if (seen - t > s->worst)
            s->worst = seen - t;
    }
    uint64_t mine = t << CPU_BITS | (uint64_t)cpu;
    uint64_t cur = p;
    while ((cur >> CPU_BITS) < t && !atomic_compare_exchange_weak(&w->published, &cur, mine))
        ;
}

struct clock_result {
    int cpu, pinned, still_pinned;
    unsigned long reads;
    struct seen mono, time;
};

static struct clock_result clocks[MAX_CPUS];

static void *clock_thread(void *arg)
{
    struct clock_result *r = arg;
    r->pinned = pin(r->cpu);
    pthread_barrier_wait(&start);
    int64_t end = monotonic() + (int64_t)CLOCK_SECONDS * 1000000000;
    for (;;) {
        /* The load (seq_cst: fenced on both sides) comes before the clock read. */
        uint64_t p = atomic_load(&mono_watch.published);
        int64_t t = monotonic();
        observe(&mono_watch, &r->mono, p, (uint64_t)t, r->cpu);
        p = atomic_load(&time_watch.published);
        uint64_t c = rdtime();
        observe(&time_watch, &r->time, p, c, r->cpu);
        r->reads++;
        if (t >= end)
            break;
    }
    r->still_pinned = sched_getcpu() == r->cpu;
    return NULL;
}

/* ---- the parallel workload ---- */

static atomic_long next_block;
static pthread_mutex_t total_lock = PTHREAD_MUTEX_INITIALIZER;
static long total_primes;
static uint64_t total_hash;

static int is_prime(uint32_t n)
{
    if (n < 2)
        return 0;
    if (n % 2 == 0)
        return n == 2;
    for (uint32_t d = 3; d * d <= n; d += 2)
        if (n % d == 0)
            return 0;
    return 1;
}

/* splitmix64: a sum of these over all n is the same however the blocks are shared out. */
static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

struct work_result {
    int cpu, pinned;
    long blocks;
};

static void *work_thread(void *arg)
{
    struct work_result *r = arg;
    r->pinned = pin(r->cpu);
    pthread_barrier_wait(&start);
    long primes = 0;
    uint64_t hash = 0;
    for (;;) {
        long b = atomic_fetch_add(&next_block, 1);
        uint32_t lo = (uint32_t)b * BLOCK;
        if (lo >= PRIME_LIMIT)
            break;
        uint32_t hi = lo + BLOCK > PRIME_LIMIT ? PRIME_LIMIT : lo + BLOCK;
        for (uint32_t n = lo; n < hi; n++) {
            primes += is_prime(n);
            hash += mix(n);
        }
        r->blocks++;
    }
    pthread_mutex_lock(&total_lock);
    total_primes += primes;
    total_hash += hash;
    pthread_mutex_unlock(&total_lock);
    return NULL;
}

static void run_work(int threads)
{
    pthread_t t[MAX_CPUS];
    struct work_result r[MAX_CPUS] = { 0 };
    atomic_store(&next_block, 0);
    total_primes = 0;
    total_hash = 0;
    pthread_barrier_init(&start, NULL, (unsigned)threads + 1);
    for (int i = 0; i < threads; i++) {
        r[i].cpu = i;
        pthread_create(&t[i], NULL, work_thread, &r[i]);
    }
    pthread_barrier_wait(&start);
    int64_t t0 = monotonic();
    for (int i = 0; i < threads; i++)
        pthread_join(t[i], NULL);
    int64_t ns = monotonic() - t0;
    pthread_barrier_destroy(&start);
    int pinned = 1;
    printf("work %d blocks:", threads);
    for (int i = 0; i < threads; i++) {
        pinned &= r[i].pinned;
        printf(" %ld", r[i].blocks);
    }
    printf("\n");
    printf("work %d pinned: %s\n", threads, pinned ? "yes" : "no");
    printf("work %d primes: %ld\n", threads, total_primes);
    printf("work %d hash: %016llx\n", threads, (unsigned long long)total_hash);
    printf("work %d ns: %lld\n", threads, (long long)ns);
}

int main(void)
{
    ncpu = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (ncpu < 1 || ncpu > MAX_CPUS) {
        printf("smp: cannot run on %d CPUs\n", ncpu);
        return 1;
    }
    printf("cpus: %d\n", ncpu);

    pthread_t t[MAX_CPUS];
    pthread_barrier_init(&start, NULL, (unsigned)ncpu);
    for (int i = 0; i < ncpu; i++) {
        clocks[i].cpu = i;
        pthread_create(&t[i], NULL, clock_thread, &clocks[i]);
    }
    unsigned long back = 0;
    for (int i = 0; i < ncpu; i++) {
        pthread_join(t[i], NULL);
        struct clock_result *r = &clocks[i];
        printf("clock %d pinned: %s\n", i, r->pinned && r->still_pinned ? "yes" : "no");
        printf("clock %d reads: %lu\n", i, r->reads);
        printf("clock %d monotonic from others: %lu\n", i, r->mono.from_others);
        printf("clock %d monotonic backwards: %lu\n", i, r->mono.backwards);
        printf("clock %d monotonic worst ns: %llu\n", i, (unsigned long long)r->mono.worst);
        printf("clock %d rdtime from others: %lu\n", i, r->time.from_others);
        printf("clock %d rdtime backwards: %lu\n", i, r->time.backwards);
        printf("clock %d rdtime worst ticks: %llu\n", i, (unsigned long long)r->time.worst);
        back += r->mono.backwards + r->time.backwards;
    }
    pthread_barrier_destroy(&start);
    printf("clock backwards: %lu\n", back);

    run_work(1);
    run_work(ncpu);
    printf("smp: done\n");
    return 0;
}
