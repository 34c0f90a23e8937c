/* Ringvisor compute benchmark (bare metal, same startup/HTIF as the tests).
 *
 * Integer kernels (CRC32, quicksort, sieve), memory kernels (streaming copy,
 * pointer chasing over 4 MiB) and floating-point kernels (double matrix
 * multiply, n-body, dot product).  The amount of work is `bench_scale`
 * units (a volatile global, patchable in the ELF, default BENCH_SCALE);
 * one unit is roughly 90 million instructions, plus about 35 million of
 * fixed setup.  bench.elf uses 20 units (~1.9 billion instructions),
 * bench-small.elf (-DBENCH_SMALL) uses 1 (~0.13 billion).
 *
 * Each kernel prints a checksum; the output is deterministic and must be
 * identical on every correct RV64GC implementation.  Exit code 0 unless a
 * kernel's self-check fails.  Build with -DBENCH_STATS to also print the
 * instructions retired per kernel (minstret). */
#include "lib.h"

#ifndef BENCH_SCALE
#ifdef BENCH_SMALL
#define BENCH_SCALE 1
#else
#define BENCH_SCALE 20
#endif
#endif

volatile u64 bench_scale = BENCH_SCALE;
static int failures;

/* ------------------------------------------------------------- helpers */
static u64 rng_state;
static void rng_seed(u64 s) { rng_state = s * 0x9e3779b97f4a7c15UL + 1; }
static u64 rng(void)
{
    u64 x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

static inline double fsqrt(double x)
{
    double r;
    __asm__("fsqrt.d %0, %1" : "=f"(r) : "f"(x));
    return r;
}

static u64 dbits(double d)
{
    union { double d; u64 u; } v = { d };
    return v.u;
}

static void report(const char *name, u64 sum)
{
    puts_("  ");
    puts_(name);
    for (size_t n = strlen(name); n < 10; n++)
        putchar_(' ');
    print_hex(sum);
    putchar_('\n');
}

static void fail(const char *what)
{
    puts_("  FAIL ");
    println(what);
    failures++;
}

/* --------------------------------------------------------------- CRC32 */
#define CRC_LEN 65536
static u8 crc_data[CRC_LEN];
static u32 crc_table[256];

static u64 k_crc32(u64 units)
{
    for (u32 i = 0; i < 256; i++) {
        u32 c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? 0xedb88320U ^ (c >> 1) : c >> 1;
        crc_table[i] = c;
    }
    rng_seed(1);
    for (u32 i = 0; i < CRC_LEN; i += 8) {
        u64 r = rng();
        for (int k = 0; k < 8; k++)
            crc_data[i + k] = (u8)(r >> (8 * k));
    }
    u64 sum = 0;
    for (u64 rep = 0; rep < units * 16; rep++) {
        u32 crc = 0xffffffffU ^ (u32)rep;
        for (u32 i = 0; i < CRC_LEN; i++)
            crc = crc_table[(crc ^ crc_data[i]) & 0xff] ^ (crc >> 8);
        sum = (sum ^ (crc ^ 0xffffffffU)) * 0x100000001b3UL;
    }
    /* known answer: CRC32("123456789") = 0xcbf43926 */
    static const char check[] = "123456789";
    u32 c = 0xffffffffU;
    for (int i = 0; i < 9; i++)
        c = crc_table[(c ^ (u8)check[i]) & 0xff] ^ (c >> 8);
    if ((c ^ 0xffffffffU) != 0xcbf43926U)
        fail("crc32 known answer");
    return sum;
}

/* ---------------------------------------------------------------- sort */
#define SORT_N 16384
static i32 sort_a[SORT_N];

static void quicksort(i32 *a, long lo, long hi)
{
    while (lo < hi) {
        i32 p = a[lo + (hi - lo) / 2];
        long i = lo, j = hi;
        while (i <= j) {
            while (a[i] < p)
                i++;
            while (a[j] > p)
                j--;
            if (i <= j) {
                i32 t = a[i];
                a[i] = a[j];
                a[j] = t;
                i++;
                j--;
            }
        }
        if (j - lo < hi - i) {
            quicksort(a, lo, j);
            lo = i;
        } else {
            quicksort(a, i, hi);
            hi = j;
        }
    }
}

static u64 k_sort(u64 units)
{
    u64 sum = 0;
    for (u64 rep = 0; rep < units * 5; rep++) {
        rng_seed(100 + rep);
        for (int i = 0; i < SORT_N; i++)
            sort_a[i] = (i32)rng();
        quicksort(sort_a, 0, SORT_N - 1);
        for (int i = 1; i < SORT_N; i++) {
            if (sort_a[i - 1] > sort_a[i]) {
                fail("sort order");
                break;
            }
        }
        for (int i = 0; i < SORT_N; i += 97)
            sum = sum * 31 + (u32)sort_a[i];
    }
    return sum;
}

/* --------------------------------------------------------------- sieve */
#define SIEVE_N (1 << 20)
static u8 sieve[SIEVE_N];

static u64 k_sieve(u64 units)
{
    u64 sum = 0;
    for (u64 rep = 0; rep < units; rep++) {
        memset(sieve, 1, SIEVE_N);
        sieve[0] = sieve[1] = 0;
        for (u64 i = 2; i * i < SIEVE_N; i++)
            if (sieve[i])
                for (u64 j = i * i; j < SIEVE_N; j += i)
                    sieve[j] = 0;
        u64 count = 0, last = 0;
        for (u64 i = 0; i < SIEVE_N; i++) {
            if (sieve[i]) {
                count++;
                last = i;
            }
        }
        if (count != 82025)     /* pi(2^20) */
            fail("sieve count");
        sum += count * 1000003 + last + rep;
    }
    return sum;
}

/* ------------------------------------------------------------- streams */
#define STREAM_WORDS (1 << 17)  /* 1 MiB per buffer */
static u64 stream_a[STREAM_WORDS], stream_b[STREAM_WORDS];

static u64 k_stream(u64 units)
{
    for (u64 i = 0; i < STREAM_WORDS; i++)
        stream_a[i] = i * 0x0101010101010101UL;
    u64 sum = 0;
    for (u64 rep = 0; rep < units * 20; rep++) {
        u64 *s = (rep & 1) ? stream_b : stream_a;
        u64 *d = (rep & 1) ? stream_a : stream_b;
        for (u64 i = 0; i < STREAM_WORDS; i += 4) {
            u64 x0 = s[i], x1 = s[i + 1], x2 = s[i + 2], x3 = s[i + 3];
            d[i] = x0 + rep;
            d[i + 1] = x1 ^ rep;
            d[i + 2] = x2;
            d[i + 3] = x3 + x0;
        }
        sum += d[rep & (STREAM_WORDS - 1)] + d[STREAM_WORDS - 1];
    }
    return sum;
}

/* ------------------------------------------------------ pointer chasing */
#define CHASE_N (1 << 20)       /* 4 MiB of u32 links */
static u32 chase_next[CHASE_N];

static u64 k_chase(u64 units)
{
    /* Sattolo's algorithm: one random cycle through all nodes */
    for (u32 i = 0; i < CHASE_N; i++)
        chase_next[i] = i;
    rng_seed(7);
    for (u32 i = CHASE_N - 1; i > 0; i--) {
        u32 j = (u32)(rng() % i);
        u32 t = chase_next[i];
        chase_next[i] = chase_next[j];
        chase_next[j] = t;
    }
    u64 sum = 0;
    u32 p = 0;
    for (u64 rep = 0; rep < units * 2; rep++) {
        for (u32 n = 0; n < CHASE_N; n++) {
            p = chase_next[p];
            sum = sum * 31 + p;
        }
        if (p != 0)
            fail("chase cycle");
    }
    return sum;
}

/* --------------------------------------------------------------- matmul */
#define MM 64
static double ma[MM][MM], mb[MM][MM], mc[MM][MM];

static u64 k_matmul(u64 units)
{
    for (int i = 0; i < MM; i++)
        for (int j = 0; j < MM; j++) {
            ma[i][j] = (double)((i * 7 + j * 3) % 17) - 8.0 + 0.25 * i;
            mb[i][j] = (double)((i * 5 + j * 11) % 13) * 0.125 - 0.75;
        }
    double acc = 0;
    for (u64 rep = 0; rep < units * 8; rep++) {
        for (int i = 0; i < MM; i++)
            for (int j = 0; j < MM; j++) {
                double s = 0;
                for (int k = 0; k < MM; k++)
                    s += ma[i][k] * mb[k][j];
                mc[i][j] = s;
            }
        /* feed back a little so repetitions differ */
        ma[rep % MM][(rep * 3) % MM] += mc[(rep * 5) % MM][rep % MM] * 1e-3;
        for (int i = 0; i < MM; i++)
            acc = acc * 0.5 + mc[i][(i * 7 + rep) % MM];
    }
    return dbits(acc);
}

/* --------------------------------------------------------------- n-body */
struct body { double x, y, z, vx, vy, vz, m; };
static struct body bodies[5];

static void nbody_init(void)
{
    const double pi = 3.141592653589793, days = 365.24, sm = 4 * pi * pi;
    static const double init[5][7] = {
        { 0, 0, 0, 0, 0, 0, 1 },
        { 4.84143144246472090e+00, -1.16032004402742839e+00, -1.03622044471123109e-01,
          1.66007664274403694e-03, 7.69901118419740425e-03, -6.90460016972063023e-05,
          9.54791938424326609e-04 },
        { 8.34336671824457987e+00, 4.12479856412430479e+00, -4.03523417114321381e-01,
          -2.76742510726862411e-03, 4.99852801234917238e-03, 2.30417297573763929e-05,
          2.85885980666130812e-04 },
        { 1.28943695621391310e+01, -1.51111514016986312e+01, -2.23307578892655734e-01,
          2.96460137564761618e-03, 2.37847173959480950e-03, -2.96589568540237556e-05,
          4.36624404335156298e-05 },
        { 1.53796971148509165e+01, -2.59193146099879641e+01, 1.79258772950371181e-01,
          2.68067772490389322e-03, 1.62824170038242295e-03, -9.51592254519715870e-05,
          5.15138902046611451e-05 },
    };
    for (int i = 0; i < 5; i++) {
        bodies[i].x = init[i][0];
        bodies[i].y = init[i][1];
        bodies[i].z = init[i][2];
        bodies[i].vx = init[i][3] * days;
        bodies[i].vy = init[i][4] * days;
        bodies[i].vz = init[i][5] * days;
        bodies[i].m = init[i][6] * sm;
    }
    double px = 0, py = 0, pz = 0;
    for (int i = 0; i < 5; i++) {
        px += bodies[i].vx * bodies[i].m;
        py += bodies[i].vy * bodies[i].m;
        pz += bodies[i].vz * bodies[i].m;
    }
    bodies[0].vx = -px / sm;
    bodies[0].vy = -py / sm;
    bodies[0].vz = -pz / sm;
}

static double nbody_energy(void)
{
    double e = 0;
    for (int i = 0; i < 5; i++) {
        struct body *b = &bodies[i];
        e += 0.5 * b->m * (b->vx * b->vx + b->vy * b->vy + b->vz * b->vz);
        for (int j = i + 1; j < 5; j++) {
            struct body *c = &bodies[j];
            double dx = b->x - c->x, dy = b->y - c->y, dz = b->z - c->z;
            e -= b->m * c->m / fsqrt(dx * dx + dy * dy + dz * dz);
        }
    }
    return e;
}

static u64 k_nbody(u64 units)
{
    nbody_init();
    double e0 = nbody_energy();
    const double dt = 0.01;
    for (u64 step = 0; step < units * 10000; step++) {
        for (int i = 0; i < 5; i++) {
            struct body *b = &bodies[i];
            for (int j = i + 1; j < 5; j++) {
                struct body *c = &bodies[j];
                double dx = b->x - c->x, dy = b->y - c->y, dz = b->z - c->z;
                double d2 = dx * dx + dy * dy + dz * dz;
                double mag = dt / (d2 * fsqrt(d2));
                b->vx -= dx * c->m * mag;
                b->vy -= dy * c->m * mag;
                b->vz -= dz * c->m * mag;
                c->vx += dx * b->m * mag;
                c->vy += dy * b->m * mag;
                c->vz += dz * b->m * mag;
            }
        }
        for (int i = 0; i < 5; i++) {
            bodies[i].x += dt * bodies[i].vx;
            bodies[i].y += dt * bodies[i].vy;
            bodies[i].z += dt * bodies[i].vz;
        }
    }
    double e1 = nbody_energy();
    double drift = (e1 - e0) / e0;
    if (drift > 5e-3 || drift < -5e-3)
        fail("nbody energy drift");
    return dbits(e1) ^ dbits(bodies[1].x);
}

/* ------------------------------------------------------------------ dot */
#define DOT_N (1 << 16)
static double dot_x[DOT_N], dot_y[DOT_N];

static u64 k_dot(u64 units)
{
    for (int i = 0; i < DOT_N; i++) {
        dot_x[i] = 1.0 / (double)(i + 1);
        dot_y[i] = (double)(i % 101) - 50.0;
    }
    double acc = 0;
    for (u64 rep = 0; rep < units * 20; rep++) {
        double s0 = 0, s1 = 0;
        for (int i = 0; i < DOT_N; i += 2) {
            s0 += dot_x[i] * dot_y[i];
            s1 += dot_x[i + 1] * dot_y[i + 1];
        }
        acc += (s0 + s1) * (double)(rep + 1);
        dot_y[rep % DOT_N] += 0.5;
    }
    return dbits(acc);
}

/* ----------------------------------------------------------------- main */
static const struct { const char *name; u64 (*fn)(u64); } kernels[] = {
    { "crc32", k_crc32 }, { "sort", k_sort }, { "sieve", k_sieve },
    { "stream", k_stream }, { "chase", k_chase }, { "matmul", k_matmul },
    { "nbody", k_nbody }, { "dot", k_dot },
};

int main(void)
{
    u64 units = bench_scale;
    puts_("bench: scale ");
    print_udec(units);
    putchar_('\n');
    u64 total = 0;
#ifdef BENCH_STATS
    u64 all0 = csr_read(minstret);
#endif
    for (unsigned k = 0; k < sizeof kernels / sizeof kernels[0]; k++) {
#ifdef BENCH_STATS
        u64 i0 = csr_read(minstret);
#endif
        /* Ringvisor's marker (slti x0, x0, 0x7a5, a no-op hint elsewhere) brackets each kernel
         * so the host can time it without changing what the program prints. */
        __asm__ volatile("slti x0, x0, 0x7a5");
        u64 sum = kernels[k].fn(units);
        __asm__ volatile("slti x0, x0, 0x7a5");
#ifdef BENCH_STATS
        u64 i1 = csr_read(minstret);
        puts_("  [");
        print_udec(i1 - i0);
        println(" instructions]");
#endif
        report(kernels[k].name, sum);
        total = (total << 7 | total >> 57) ^ sum;
    }
#ifdef BENCH_STATS
    puts_("  [total ");
    print_udec(csr_read(minstret) - all0);
    println(" instructions]");
#endif
    report("total", total);
    if (failures) {
        println("bench FAILED");
        return 1;
    }
    println("bench done");
    return 0;
}
