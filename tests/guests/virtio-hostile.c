/* virtio-hostile: a virtio driver that breaks every rule it can, against the
 * virtio-blk device in virtio-mmio slot 0 (0x1000_1000), polled (no
 * interrupts are taken: InterruptStatus is read and acknowledged).
 *
 * RINGVISOR ONLY.  This kernel is not part of the QEMU-equivalence manifest
 * (manifest.json lists it under "ringvisorOnly"): what a device does with a
 * malformed ring is the device's choice, and QEMU's may abort the whole VM.
 * Ringvisor's devices (src/devices/virtio) answer every protocol error with
 * DEVICE_NEEDS_RESET (status bit 0x40, virtio 1.2 section 2.1.2), raise a
 * configuration-change interrupt if DRIVER_OK was set, stop, and work again
 * after a reset and a new initialisation.  That is what is checked here.
 * Run by test/system/virtio-hostile.test.ts; by hand:
 *
 *     ringvisor run --kernel build/guests/virtio-hostile.elf --append "" \
 *         --mem 64 --disk DISK
 *
 * The disk (at least 3 sectors) must hold in sector 0 the 512 bytes
 * "RINGVISOR-VIRTIO-TEST-DISK\n" repeated and cut at 512 (the 27-byte string
 * 18 times, then its first 26 bytes).  The kernel writes sector 1 once, with
 * "VIRTIO-HOSTILE-WROTE-THIS\n" repeated and cut at 512 the same way; no
 * other request it makes may change the disk (the hostile writes target
 * sector 2 and must never land), so afterwards the image is the original
 * with only sector 1 changed.
 *
 * Sections, in order (virtio 1.2 sections 2.7 split virtqueues, 3.1.1 driver
 * initialisation, 4.2.2 and 4.2.3 virtio-mmio, 5.2 the block device):
 *  - the transport's identity registers and a proper initialisation (reset,
 *    ACKNOWLEDGE, DRIVER, features VERSION_1 | RING_INDIRECT_DESC |
 *    BLK_F_FLUSH, FEATURES_OK read back, queue 0 of QueueNumMax entries (at
 *    most 256), DRIVER_OK);
 *  - feature negotiation refused (a feature not offered, no VERSION_1);
 *  - valid requests: read sector 0, write sector 1 and read it back, flush,
 *    a read past the capacity (IOERR), an unknown type (UNSUPP), a read
 *    through an indirect table;
 *  - writes the device must ignore (queue registers while the queue is
 *    ready, a notify of a queue that does not exist, a register written with
 *    a byte store, a queue that does not exist);
 *  - hostile rings, each answered by DEVICE_NEEDS_RESET and the
 *    configuration-change interrupt, then reset, re-initialisation and a
 *    valid read of sector 0: a loop of two descriptors, a chain through the
 *    whole table and on (longer than the queue size), next and head indices
 *    outside the table, avail->idx 1000 ahead, data buffers of reads and
 *    writes at 0, at RAM's end, at 0xffff_ffff_0000_0000, on the UART and
 *    straddling RAM's end, a length of 0xffff_ffff, indirect tables nested,
 *    of 24 bytes, looping, with NEXT set, outside RAM and straddling its end,
 *    a readable descriptor after a writable one, a request without a header;
 *  - hostile queue configurations (answered the same way, before DRIVER_OK):
 *    descriptor table at 0x1000, driver area on the UART, device area
 *    straddling RAM's end, each area misaligned, QueueDescHigh all ones,
 *    sizes 3, 0 and twice QueueNumMax, DRIVER_OK without FEATURES_OK;
 *  - a descriptor rewritten while its request is in flight: a valid read's
 *    data buffer address replaced by one outside RAM right after the notify
 *    (after 0 to 140 us), 2048 times: each request either completes normally
 *    into the original buffer or ends in DEVICE_NEEDS_RESET with that buffer
 *    untouched.  How many of each depends on timing and is never printed;
 *  - garbage: every register offset 0x000-0x0fc and the config space
 *    0x100-0x1ff written with values from a fixed-seed PRNG, in random order
 *    and widths, 32 rounds (live queue or not); the identity registers and
 *    the capacity must not change, and a reset and re-initialisation work;
 *  - rings of random content (a fixed-seed PRNG; queue areas and buffers in
 *    a scratch area at 0x8300_0000 or far outside RAM), 128 rounds: every
 *    round ends with all chains used or DEVICE_NEEDS_RESET, then a reset and
 *    re-initialisation work;
 *  - last, the device still reads sector 0 and sector 1 correctly.  The
 *    title of that section gives the number of hostile actions above that
 *    each had to end in DEVICE_NEEDS_RESET (the system test expects at least
 *    that many device errors in the VM's counters).
 *
 * Only deterministic output is printed: the section lines, failures, and the
 * PASS line. */
#include "lib.h"

#define RAM_BASE   0x80000000UL
#define RAM_END    0x84000000UL         /* run with 64 MiB */
#define UART       0x10000000UL
#define VIO        0x10001000UL         /* virtio-mmio slot 0 */
#define FAR_OUT    0xffffffff00000000UL
#define SCRATCH    0x83000000UL         /* fuzzed rings; past the kernel (< 0x8220_0000) */
#define SCRATCH_DATA 0x83100000UL       /* and their buffers: 1 MiB + 8 KiB */

/* virtio-mmio registers (4.2.2) */
#define R_MAGIC        0x000
#define R_VERSION      0x004
#define R_DEVICE_ID    0x008
#define R_VENDOR_ID    0x00c
#define R_DEV_FEAT     0x010
#define R_DEV_FEAT_SEL 0x014
#define R_DRV_FEAT     0x020
#define R_DRV_FEAT_SEL 0x024
#define R_QUEUE_SEL    0x030
#define R_QUEUE_NUM_MAX 0x034
#define R_QUEUE_NUM    0x038
#define R_QUEUE_READY  0x044
#define R_QUEUE_NOTIFY 0x050
#define R_INT_STATUS   0x060
#define R_INT_ACK      0x064
#define R_STATUS       0x070
#define R_DESC_LO      0x080
#define R_DESC_HI      0x084
#define R_DRIVER_LO    0x090
#define R_DRIVER_HI    0x094
#define R_DEVICE_LO    0x0a0
#define R_DEVICE_HI    0x0a4
#define R_CONFIG       0x100

/* device status (2.1) */
#define S_ACK          1
#define S_DRIVER       2
#define S_DRIVER_OK    4
#define S_FEATURES_OK  8
#define S_NEEDS_RESET  0x40
#define S_READY        (S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK)

/* feature bits */
#define F_BLK_FLUSH      9
#define F_INDIRECT_DESC  28
#define F_VERSION_1      32             /* bit 0 of the high word */
#define F_ACCESS_PLATFORM 33            /* not offered */

/* split virtqueue (2.7) */
#define D_NEXT     1
#define D_WRITE    2
#define D_INDIRECT 4
#define QMAX 256

struct desc { u64 addr; u32 len; u16 flags; u16 next; };
struct avail { u16 flags; u16 idx; u16 ring[QMAX]; u16 used_event; };
struct used_elem { u32 id; u32 len; };
struct used { u16 flags; u16 idx; struct used_elem ring[QMAX]; u16 avail_event; };

/* virtio-blk requests (5.2.6) */
#define T_IN    0
#define T_OUT   1
#define T_FLUSH 4
#define T_BOGUS 0x7f
#define BLK_OK     0
#define BLK_IOERR  1
#define BLK_UNSUPP 2
struct blk_hdr { u32 type; u32 reserved; u64 sector; };

static volatile struct desc desc[QMAX] __attribute__((aligned(4096)));
static volatile struct avail avail __attribute__((aligned(4096)));
static volatile struct used used __attribute__((aligned(4096)));
static volatile struct desc itab[8] __attribute__((aligned(64)));
static volatile struct desc itab2[4] __attribute__((aligned(64)));
static volatile struct blk_hdr hdr __attribute__((aligned(16)));
static volatile u8 sts[16] __attribute__((aligned(16)));
static u8 buf[4096] __attribute__((aligned(4096)));
static u8 pat0[512], pat1[512];

static const char PAT0[] = "RINGVISOR-VIRTIO-TEST-DISK\n";
static const char PAT1[] = "VIRTIO-HOSTILE-WROTE-THIS\n";

/* ---- the transport ---- */
static inline u32 rd(u32 off) { return *(volatile u32 *)(VIO + off); }
static inline void wr(u32 off, u32 v) { *(volatile u32 *)(VIO + off) = v; }
static inline void wr8(u32 off, u8 v) { *(volatile u8 *)(VIO + off) = v; }
static inline void wr16(u32 off, u16 v) { *(volatile u16 *)(VIO + off) = v; }
static inline u64 now(void) { return csr_read(time); }

/* The default queue: our rings, qn entries (from QueueNumMax). */
static u32 qn;
static u16 avail_idx, used_seen;
static u32 isr_seen;                    /* InterruptStatus bits acknowledged since last cleared */
static u64 capacity;                    /* sectors, read at the first initialisation */
static unsigned n_hostile;              /* hostile actions answered by DEVICE_NEEDS_RESET */
static unsigned race_done, race_reset;  /* outcomes of the in-flight rewrites: never printed */

struct qcfg { u32 num; u64 desc, driver, device; };

static struct qcfg our_queue(void)
{
    return (struct qcfg){ qn, (u64)desc, (u64)&avail, (u64)&used };
}

/* xorshift64*, fixed seed: the same garbage on every run */
static u64 rng_state = 0x52494e4756495352UL;
static u64 rnd(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dUL;
}

static void fill_pattern(u8 *p, const char *s)
{
    size_t n = strlen(s);
    for (unsigned i = 0; i < 512; i++)
        p[i] = (u8)s[i % n];
}

static void ack_interrupts(void)
{
    u32 isr = rd(R_INT_STATUS);
    if (isr) {
        isr_seen |= isr;
        wr(R_INT_ACK, isr);
    }
}

static void reset_dev(void)
{
    wr(R_STATUS, 0);
    isr_seen = 0;
}

/* Reset, ACKNOWLEDGE, DRIVER, the features asked for, FEATURES_OK (3.1.1
 * steps 1-6); returns the status read back. */
static u32 negotiate(u32 feat_lo, u32 feat_hi)
{
    reset_dev();
    wr(R_STATUS, S_ACK);
    wr(R_STATUS, S_ACK | S_DRIVER);
    wr(R_DEV_FEAT_SEL, 0);
    (void)rd(R_DEV_FEAT);
    wr(R_DEV_FEAT_SEL, 1);
    (void)rd(R_DEV_FEAT);
    wr(R_DRV_FEAT_SEL, 0);
    wr(R_DRV_FEAT, feat_lo);
    wr(R_DRV_FEAT_SEL, 1);
    wr(R_DRV_FEAT, feat_hi);
    wr(R_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK);
    return rd(R_STATUS);
}

static const u32 FEAT_LO = (1u << F_BLK_FLUSH) | (1u << F_INDIRECT_DESC);
static const u32 FEAT_HI = 1u << (F_VERSION_1 - 32);

/* Queue 0 set up (4.2.3.2): our own rings are zeroed first. */
static void queue_setup(const struct qcfg *q)
{
    if (q->desc == (u64)desc) {
        memset((void *)desc, 0, sizeof desc);
        memset((void *)&avail, 0, sizeof avail);
        memset((void *)&used, 0, sizeof used);
        avail_idx = used_seen = 0;
        fence();
    }
    wr(R_QUEUE_SEL, 0);
    wr(R_QUEUE_NUM, q->num);
    wr(R_DESC_LO, (u32)q->desc);
    wr(R_DESC_HI, (u32)(q->desc >> 32));
    wr(R_DRIVER_LO, (u32)q->driver);
    wr(R_DRIVER_HI, (u32)(q->driver >> 32));
    wr(R_DEVICE_LO, (u32)q->device);
    wr(R_DEVICE_HI, (u32)(q->device >> 32));
    wr(R_QUEUE_READY, 1);
}

/* The whole initialisation with queue q; 1 if the device is live. */
static int init_with(const struct qcfg *q)
{
    if ((negotiate(FEAT_LO, FEAT_HI) & S_FEATURES_OK) == 0)
        return 0;
    queue_setup(q);
    if (rd(R_QUEUE_READY) != 1)
        return 0;
    wr(R_STATUS, S_READY);
    return rd(R_STATUS) == S_READY;
}

static int init_dev(void)
{
    struct qcfg q = our_queue();
    return init_with(&q);
}

/* Makes the chain at `head` available and notifies. */
static void publish(u16 head)
{
    avail.ring[avail_idx % qn] = head;
    fence();
    avail_idx++;
    avail.idx = avail_idx;
    fence();
    wr(R_QUEUE_NOTIFY, 0);
}

#define W_DONE    1
#define W_RESET   2
#define W_TIMEOUT 3
#define TIMEOUT_TICKS 100000000UL       /* 10 s of the 10 MHz timebase */

/* Polls until the device used the next chain, or went into
 * DEVICE_NEEDS_RESET, or 10 s passed. */
static int wait_used(void)
{
    u64 end = now() + TIMEOUT_TICKS;
    for (;;) {
        fence();
        if (used.idx != used_seen) {
            fence();
            used_seen++;
            ack_interrupts();
            return W_DONE;
        }
        ack_interrupts();
        if (rd(R_STATUS) & S_NEEDS_RESET)
            return W_RESET;
        if (now() > end)
            return W_TIMEOUT;
    }
}

/* The last used element */
static u32 last_id(void) { return used.ring[(u16)(used_seen - 1) % qn].id; }
static u32 last_len(void) { return used.ring[(u16)(used_seen - 1) % qn].len; }

/* A three-descriptor request at descriptors 0-2: header, data, status. */
static void build_req(u32 type, u64 sector, u64 data, u32 len, int data_writable)
{
    hdr.type = type;
    hdr.reserved = 0;
    hdr.sector = sector;
    sts[0] = 0xff;
    desc[0] = (struct desc){ (u64)&hdr, sizeof hdr, D_NEXT, 1 };
    desc[1] = (struct desc){ data, len, (u16)(D_NEXT | (data_writable ? D_WRITE : 0)), 2 };
    desc[2] = (struct desc){ (u64)sts, 1, D_WRITE, 0 };
    fence();
}

/* A request that must complete: returns its status byte. */
static u32 request(const char *name, u32 type, u64 sector, u64 data, u32 len, int data_writable, u32 used_len)
{
    build_req(type, sector, data, len, data_writable);
    publish(0);
    CHECK(name, wait_used(), W_DONE);
    CHECK(name, last_id(), 0);
    CHECK(name, last_len(), used_len);
    return sts[0];
}

static void read_sector(const char *name, u64 sector, const u8 *expect)
{
    memset(buf, 0xee, 512);
    CHECK(name, request(name, T_IN, sector, (u64)buf, 512, 1, 513), BLK_OK);
    CHECK_TRUE(name, memcmp(buf, expect, 512) == 0);
    CHECK(name, rd(R_STATUS), S_READY);
}

/* After DEVICE_NEEDS_RESET: reset, initialise again, read sector 0. */
static void recover(const char *name)
{
    reset_dev();
    CHECK(name, rd(R_STATUS), 0);
    CHECK(name, init_dev(), 1);
    read_sector(name, 0, pat0);
}

/* A hostile action was made: the device must answer DEVICE_NEEDS_RESET
 * (with the configuration-change interrupt if it was live), and work again
 * after a reset. */
static void expect_reset(const char *name, int live)
{
    CHECK(name, wait_used(), W_RESET);
    CHECK(name, rd(R_STATUS) & S_NEEDS_RESET, S_NEEDS_RESET);
    if (live) {
        ack_interrupts();
        CHECK(name, isr_seen & 2, 2);
    }
    recover(name);
    n_hostile++;
}

/* The descriptors are in place: make head 0 available to a live device and
 * expect it to refuse. */
static void attack(const char *name)
{
    fence();
    publish(0);
    expect_reset(name, 1);
}

/* ------------------------------------------------------------------------ */
static void test_init(void)
{
    section("identity and initialisation");
    CHECK("MagicValue", rd(R_MAGIC), 0x74726976);
    CHECK("Version (modern)", rd(R_VERSION), 2);
    CHECK("DeviceID: block", rd(R_DEVICE_ID), 2);
    reset_dev();
    CHECK("status after reset", rd(R_STATUS), 0);
    wr(R_STATUS, S_ACK);
    wr(R_STATUS, S_ACK | S_DRIVER);
    wr(R_DEV_FEAT_SEL, 1);
    u32 hi = rd(R_DEV_FEAT);
    wr(R_DEV_FEAT_SEL, 0);
    u32 lo = rd(R_DEV_FEAT);
    CHECK("VERSION_1 offered", hi & 1, 1);
    CHECK("RING_INDIRECT_DESC offered", lo & (1u << F_INDIRECT_DESC), 1u << F_INDIRECT_DESC);
    CHECK("FLUSH offered", lo & (1u << F_BLK_FLUSH), 1u << F_BLK_FLUSH);
    CHECK("ACCESS_PLATFORM not offered", hi & 2, 0);
    wr(R_DRV_FEAT_SEL, 0);
    wr(R_DRV_FEAT, FEAT_LO);
    wr(R_DRV_FEAT_SEL, 1);
    wr(R_DRV_FEAT, FEAT_HI);
    wr(R_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK);
    CHECK("FEATURES_OK kept", rd(R_STATUS), S_ACK | S_DRIVER | S_FEATURES_OK);
    wr(R_QUEUE_SEL, 0);
    u32 max = rd(R_QUEUE_NUM_MAX);
    CHECK_TRUE("QueueNumMax a power of 2, at least 8", max >= 8 && (max & (max - 1)) == 0);
    qn = max > QMAX ? QMAX : max;
    CHECK("queue 0 not ready after reset", rd(R_QUEUE_READY), 0);
    struct qcfg q = our_queue();
    queue_setup(&q);
    CHECK("queue 0 ready", rd(R_QUEUE_READY), 1);
    wr(R_STATUS, S_READY);
    CHECK("DRIVER_OK", rd(R_STATUS), S_READY);
    capacity = rd(R_CONFIG) | (u64)rd(R_CONFIG + 4) << 32;
    CHECK_TRUE("capacity of at least 3 sectors", capacity >= 3);
    CHECK("config: blk_size", rd(R_CONFIG + 20), 512);
}

static void test_negotiation(void)
{
    section("feature negotiation");
    CHECK("a feature not offered: FEATURES_OK refused",
          negotiate(FEAT_LO, FEAT_HI | (1u << (F_ACCESS_PLATFORM - 32))) & S_FEATURES_OK, 0);
    CHECK("without VERSION_1: FEATURES_OK refused", negotiate(FEAT_LO, 0) & S_FEATURES_OK, 0);
    CHECK("refused: no error", rd(R_STATUS) & S_NEEDS_RESET, 0);
    reset_dev();
    CHECK("reset", rd(R_STATUS), 0);
    CHECK("initialised again", init_dev(), 1);
}

static void test_valid(void)
{
    section("valid requests");
    read_sector("read sector 0", 0, pat0);
    memcpy(buf, pat1, 512);
    CHECK("write sector 1", request("write sector 1", T_OUT, 1, (u64)buf, 512, 0, 1), BLK_OK);
    read_sector("read sector 1 back", 1, pat1);
    build_req(T_FLUSH, 0, 0, 0, 0);
    desc[0].next = 2;                   /* header, status */
    fence();
    publish(0);
    CHECK("flush", wait_used(), W_DONE);
    CHECK("flush: status", sts[0], BLK_OK);
    CHECK("read past the capacity: IOERR", request("read past the capacity", T_IN, capacity, (u64)buf, 512, 1, 1), BLK_IOERR);
    CHECK("unknown request type: UNSUPP", request("unknown request type", T_BOGUS, 0, (u64)buf, 512, 1, 1), BLK_UNSUPP);
    CHECK("no error after IOERR and UNSUPP", rd(R_STATUS), S_READY);

    /* the same read of sector 0 through an indirect table */
    memset(buf, 0xee, 512);
    hdr = (struct blk_hdr){ T_IN, 0, 0 };
    sts[0] = 0xff;
    itab[0] = (struct desc){ (u64)&hdr, sizeof hdr, D_NEXT, 1 };
    itab[1] = (struct desc){ (u64)buf, 512, D_NEXT | D_WRITE, 2 };
    itab[2] = (struct desc){ (u64)sts, 1, D_WRITE, 0 };
    desc[5] = (struct desc){ (u64)itab, 3 * sizeof(struct desc), D_INDIRECT, 0 };
    fence();
    publish(5);
    CHECK("indirect read", wait_used(), W_DONE);
    CHECK("indirect read: id", last_id(), 5);
    CHECK("indirect read: len", last_len(), 513);
    CHECK("indirect read: status", sts[0], BLK_OK);
    CHECK_TRUE("indirect read: data", memcmp(buf, pat0, 512) == 0);
}

static void test_ignored(void)
{
    section("writes the device ignores");
    wr(R_QUEUE_SEL, 0);
    wr(R_DESC_LO, 0x1000);              /* the queue is ready: ignored (4.2.3.2) */
    wr(R_QUEUE_NUM, 3);
    wr(R_DRIVER_HI, 0xffffffff);
    CHECK("queue registers written while ready", rd(R_STATUS), S_READY);
    read_sector("queue registers written while ready: read", 0, pat0);
    wr(R_QUEUE_NOTIFY, 7);
    wr(R_QUEUE_NOTIFY, 0xffffffff);
    CHECK("notify of queues that do not exist", rd(R_STATUS), S_READY);
    wr8(R_STATUS, 0);                   /* registers are 32-bit: a byte store is ignored */
    wr16(R_STATUS, 0);
    CHECK("byte and halfword stores to Status", rd(R_STATUS), S_READY);
    wr(R_QUEUE_SEL, 9);
    CHECK("a queue that does not exist: QueueNumMax", rd(R_QUEUE_NUM_MAX), 0);
    wr(R_QUEUE_READY, 1);
    CHECK("a queue that does not exist: not made ready", rd(R_QUEUE_READY), 0);
    wr(R_QUEUE_SEL, 0);
    CHECK("queue 0 still ready", rd(R_QUEUE_READY), 1);
    wr(R_INT_ACK, 0xffffffff);
    CHECK("InterruptACK of every bit", rd(R_INT_STATUS), 0);
    read_sector("after the ignored writes", 0, pat0);
}

/* ------------------------------------------------------------------------ */
/* A hostile read or write: the data buffer at `addr` (length 512). */
static void bad_buffer(const char *name, u32 type, u64 addr)
{
    build_req(type, 2, addr, 512, type == T_IN);
    publish(0);
    expect_reset(name, 1);
}

static void test_hostile_rings(void)
{
    section("hostile rings");

    /* two descriptors pointing at each other */
    desc[0] = (struct desc){ (u64)&hdr, 16, D_NEXT, 1 };
    desc[1] = (struct desc){ (u64)buf, 16, D_NEXT, 0 };
    attack("a loop of two descriptors");

    /* a chain through every descriptor and on into its head again: longer
     * than the queue size */
    for (u32 i = 0; i < qn; i++)
        desc[i] = (struct desc){ (u64)buf, 16, D_NEXT, (u16)((i + 1) % qn) };
    attack("a chain longer than the queue size");

    /* next outside the table */
    build_req(T_IN, 0, (u64)buf, 512, 1);
    desc[1].next = (u16)qn;
    attack("next index out of range");

    /* head outside the table */
    build_req(T_IN, 0, (u64)buf, 512, 1);
    publish((u16)qn);
    expect_reset("head index out of range", 1);

    /* avail->idx far ahead of what the device has seen */
    build_req(T_IN, 0, (u64)buf, 512, 1);
    avail.ring[0] = 0;
    fence();
    avail.idx = (u16)(avail_idx + 1000);
    fence();
    wr(R_QUEUE_NOTIFY, 0);
    expect_reset("avail->idx 1000 ahead", 1);

    /* data buffers outside RAM: reads into them, writes from them (the
     * writes aim at sector 2, which must never change) */
    static const struct { const char *rd, *wr; u64 addr; } outside[] = {
        { "read into address 0", "write from address 0", 0 },
        { "read into RAM's end", "write from RAM's end", RAM_END },
        { "read into 0xffffffff00000000", "write from 0xffffffff00000000", FAR_OUT },
        { "read into the UART", "write from the UART", UART },
    };
    for (unsigned i = 0; i < sizeof outside / sizeof outside[0]; i++) {
        bad_buffer(outside[i].rd, T_IN, outside[i].addr);
        bad_buffer(outside[i].wr, T_OUT, outside[i].addr);
    }
    /* straddling RAM's end: nothing below the end may be written either */
    volatile u8 *tail = (volatile u8 *)(RAM_END - 256);
    for (int i = 0; i < 256; i++)
        tail[i] = 0x5a;
    bad_buffer("read straddling RAM's end", T_IN, RAM_END - 256);
    int same = 1;
    for (int i = 0; i < 256; i++)
        same &= tail[i] == 0x5a;
    CHECK_TRUE("read straddling RAM's end: RAM's last bytes untouched", same);
    bad_buffer("write straddling RAM's end", T_OUT, RAM_END - 256);

    /* a length of 0xffffffff */
    build_req(T_IN, 0, (u64)buf, 0xffffffffu, 1);
    publish(0);
    expect_reset("a descriptor of length 0xffffffff", 1);

    /* indirect tables: nested */
    itab2[0] = (struct desc){ (u64)&hdr, 16, 0, 0 };
    itab[0] = (struct desc){ (u64)itab2, sizeof(struct desc), D_INDIRECT, 0 };
    desc[0] = (struct desc){ (u64)itab, 2 * sizeof(struct desc), D_INDIRECT, 0 };
    attack("nested indirect tables");

    /* a table of 24 bytes */
    itab[0] = (struct desc){ (u64)&hdr, 16, D_NEXT, 1 };
    itab[1] = (struct desc){ (u64)sts, 1, D_WRITE, 0 };
    desc[0] = (struct desc){ (u64)itab, 24, D_INDIRECT, 0 };
    attack("an indirect table of 24 bytes");

    /* a loop inside a table */
    itab[0] = (struct desc){ (u64)&hdr, 16, D_NEXT, 1 };
    itab[1] = (struct desc){ (u64)buf, 16, D_NEXT, 0 };
    desc[0] = (struct desc){ (u64)itab, 2 * sizeof(struct desc), D_INDIRECT, 0 };
    attack("a loop inside an indirect table");

    /* an indirect descriptor with NEXT */
    itab[0] = (struct desc){ (u64)&hdr, 16, D_NEXT, 1 };
    itab[1] = (struct desc){ (u64)sts, 1, D_WRITE, 0 };
    desc[0] = (struct desc){ (u64)itab, 2 * sizeof(struct desc), D_INDIRECT | D_NEXT, 1 };
    desc[1] = (struct desc){ (u64)sts, 1, D_WRITE, 0 };
    attack("an indirect descriptor with NEXT set");

    /* tables outside RAM, and straddling its end */
    desc[0] = (struct desc){ 0x1000, 3 * sizeof(struct desc), D_INDIRECT, 0 };
    attack("an indirect table at 0x1000");
    desc[0] = (struct desc){ RAM_END - 16, 3 * sizeof(struct desc), D_INDIRECT, 0 };
    attack("an indirect table straddling RAM's end");

    /* a device-readable descriptor after a device-writable one */
    build_req(T_IN, 0, (u64)buf, 512, 1);
    desc[2].flags = 0;
    attack("a readable descriptor after a writable one");

    /* a request without its header: one writable descriptor */
    desc[0] = (struct desc){ (u64)buf, 512, D_WRITE, 0 };
    attack("a request without a header");
}

/* A queue configuration the device must refuse when QueueReady is set. */
static void bad_queue(const char *name, struct qcfg q)
{
    CHECK(name, negotiate(FEAT_LO, FEAT_HI), S_ACK | S_DRIVER | S_FEATURES_OK);
    memset((void *)desc, 0, sizeof desc);
    memset((void *)&avail, 0, sizeof avail);
    memset((void *)&used, 0, sizeof used);
    avail_idx = used_seen = 0;
    fence();
    wr(R_QUEUE_SEL, 0);
    wr(R_QUEUE_NUM, q.num);
    wr(R_DESC_LO, (u32)q.desc);
    wr(R_DESC_HI, (u32)(q.desc >> 32));
    wr(R_DRIVER_LO, (u32)q.driver);
    wr(R_DRIVER_HI, (u32)(q.driver >> 32));
    wr(R_DEVICE_LO, (u32)q.device);
    wr(R_DEVICE_HI, (u32)(q.device >> 32));
    wr(R_QUEUE_READY, 1);
    CHECK(name, rd(R_QUEUE_READY), 0);
    expect_reset(name, 0);
}

static void test_hostile_queues(void)
{
    section("hostile queue configurations");
    struct qcfg q = our_queue();
    struct qcfg b;
    b = q; b.desc = 0x1000;               bad_queue("descriptor table at 0x1000", b);
    b = q; b.driver = UART;               bad_queue("driver area on the UART", b);
    b = q; b.device = RAM_END - 16;       bad_queue("device area straddling RAM's end", b);
    b = q; b.desc += 8;                   bad_queue("descriptor table misaligned", b);
    b = q; b.driver += 1;                 bad_queue("driver area misaligned", b);
    b = q; b.device += 2;                 bad_queue("device area misaligned", b);
    b = q; b.desc |= 0xffffffffUL << 32;  bad_queue("QueueDescHigh all ones", b);
    b = q; b.num = 3;                     bad_queue("queue size 3", b);
    b = q; b.num = 0;                     bad_queue("queue size 0", b);
    wr(R_QUEUE_SEL, 0);
    b = q; b.num = rd(R_QUEUE_NUM_MAX) * 2; bad_queue("queue size twice QueueNumMax", b);

    /* DRIVER_OK without FEATURES_OK */
    reset_dev();
    wr(R_STATUS, S_ACK);
    wr(R_STATUS, S_ACK | S_DRIVER);
    wr(R_DRV_FEAT_SEL, 1);
    wr(R_DRV_FEAT, FEAT_HI);
    queue_setup(&q);
    wr(R_STATUS, S_ACK | S_DRIVER | S_DRIVER_OK);
    expect_reset("DRIVER_OK without FEATURES_OK", 0);
}

/* ------------------------------------------------------------------------ */
/* A descriptor rewritten while its request is in flight. */
#define RACE_ROUNDS 2048
static void test_inflight(void)
{
    section("descriptors rewritten in flight");
    static const u64 bad[4] = { RAM_END, 0, FAR_OUT, UART };
    for (unsigned i = 0; i < RACE_ROUNDS; i++) {
        memset(buf, 0xee, 512);
        build_req(T_IN, 0, (u64)buf, 512, 1);
        publish(0);
        u64 until = now() + (i % 8) * 200;   /* 0 to 140 us */
        while (now() < until)
            ;
        desc[1].addr = bad[i % 4];
        fence();
        int r = wait_used();
        if (r == W_DONE) {
            race_done++;
            CHECK("in flight: completed normally: id", last_id(), 0);
            CHECK("in flight: completed normally: len", last_len(), 513);
            CHECK("in flight: completed normally: status", sts[0], BLK_OK);
            CHECK_TRUE("in flight: completed normally: data", memcmp(buf, pat0, 512) == 0);
            CHECK("in flight: completed normally: device", rd(R_STATUS), S_READY);
        } else {
            race_reset++;
            /* as many checks as above, so the count does not depend on timing */
            CHECK("in flight: DEVICE_NEEDS_RESET", r, W_RESET);
            CHECK("in flight: DEVICE_NEEDS_RESET in Status", rd(R_STATUS) & S_NEEDS_RESET, S_NEEDS_RESET);
            int untouched = sts[0] == 0xff;
            for (int k = 0; k < 512; k++)
                untouched &= buf[k] == 0xee;
            CHECK_TRUE("in flight: the original buffer untouched", untouched);
            reset_dev();
            CHECK("in flight: reset", rd(R_STATUS), 0);
            CHECK("in flight: initialised again", init_dev(), 1);
        }
    }
    read_sector("after the rewrites", 0, pat0);
}

/* ------------------------------------------------------------------------ */
/* Garbage in every register and the config space. */
#define GARBAGE_ROUNDS 32
static u32 garbage_value(void)
{
    u64 r = rnd();
    switch (r & 7) {
    case 0: return (u32)(r >> 8) & 3;   /* small values: 0 (reset), 1 (ready), ... */
    case 1: return 0xffffffffu;
    default: return (u32)(r >> 32);
    }
}

static void test_garbage(void)
{
    section("garbage in every register and the config space");
    u32 order[64];
    for (unsigned round = 0; round < GARBAGE_ROUNDS; round++) {
        if (round % 2 == 0)
            CHECK("garbage: initialised first", init_dev(), 1);
        for (unsigned i = 0; i < 64; i++)
            order[i] = i * 4;
        for (unsigned i = 63; i > 0; i--) {
            unsigned j = (unsigned)(rnd() % (i + 1));
            u32 t = order[i]; order[i] = order[j]; order[j] = t;
        }
        for (unsigned i = 0; i < 64; i++) {
            u32 off = order[i], v = garbage_value();
            switch (rnd() % 8) {
            case 0: wr8(off + (u32)(rnd() % 4), (u8)v); break;
            case 1: wr16(off + 2 * (u32)(rnd() % 2), (u16)v); break;
            default: wr(off, v);
            }
        }
        for (u32 off = 0x100; off < 0x200; ) {
            u32 w = 1u << (rnd() % 3);
            u32 v = garbage_value();
            if (w == 1) wr8(off, (u8)v);
            else if (w == 2) wr16(off, (u16)v);
            else wr(off, v);
            off += w;
        }
        for (u32 off = 0; off < 0x200; off += 4)
            (void)rd(off);
        CHECK("garbage: MagicValue", rd(R_MAGIC), 0x74726976);
        CHECK("garbage: Version", rd(R_VERSION), 2);
        CHECK("garbage: DeviceID", rd(R_DEVICE_ID), 2);
        reset_dev();
        CHECK("garbage: reset", rd(R_STATUS), 0);
        CHECK("garbage: initialised again", init_dev(), 1);
        u64 cap = rd(R_CONFIG) | (u64)rd(R_CONFIG + 4) << 32;
        CHECK("garbage: capacity unchanged", cap, capacity);
        CHECK("garbage: blk_size unchanged", rd(R_CONFIG + 20), 512);
        read_sector("garbage: read", 0, pat0);
    }
}

/* ------------------------------------------------------------------------ */
/* Rings of random content, in the scratch area. */
#define FUZZ_ROUNDS 128
static void test_random_rings(void)
{
    section("rings of random content");
    volatile struct desc *fd = (volatile struct desc *)SCRATCH;
    volatile struct avail *fa = (volatile struct avail *)(SCRATCH + 0x1000);
    volatile struct used *fu = (volatile struct used *)(SCRATCH + 0x2000);
    for (unsigned round = 0; round < FUZZ_ROUNDS; round++) {
        u32 n = 1u << (rnd() % 9);      /* 1 .. 256 */
        if (n > qn) n = qn;
        for (u64 *p = (u64 *)SCRATCH_DATA; p < (u64 *)(SCRATCH_DATA + 0x100000); p += 64)
            *p = rnd();                 /* sparse random bytes; the rest as before */
        for (u32 i = 0; i < n; i++) {
            u64 r = rnd();
            u64 addr = (r & 1) ? rnd() : SCRATCH_DATA + rnd() % 0x100000;
            u32 len = (r & 6) ? (u32)(rnd() % 8192) : (u32)rnd();
            fd[i] = (struct desc){ addr, len, (u16)((r >> 8) & 7), (u16)(rnd() % (2 * n)) };
        }
        u16 navail = (u16)(1 + rnd() % n);
        for (u32 i = 0; i < n; i++)
            fa->ring[i] = (u16)(rnd() % (n + n / 4 + 1));
        fa->flags = (u16)rnd();
        fa->idx = 0;
        memset((void *)fu, 0, sizeof *fu);
        fence();
        struct qcfg q = { n, SCRATCH, SCRATCH + 0x1000, SCRATCH + 0x2000 };
        CHECK("random rings: device live", init_with(&q), 1);
        /* published after DRIVER_OK (the device looks at the rings then) */
        fa->idx = navail;
        fence();
        wr(R_QUEUE_NOTIFY, 0);
        u64 end = now() + TIMEOUT_TICKS;
        int outcome = 0;
        while (!outcome) {
            fence();
            if (fu->idx == navail) outcome = W_DONE;
            else if (rd(R_STATUS) & S_NEEDS_RESET) outcome = W_RESET;
            else if (now() > end) outcome = W_TIMEOUT;
        }
        ack_interrupts();
        CHECK_TRUE("random rings: all chains used or DEVICE_NEEDS_RESET", outcome != W_TIMEOUT);
        reset_dev();
        CHECK("random rings: reset", rd(R_STATUS), 0);
        CHECK("random rings: initialised again", init_dev(), 1);
        read_sector("random rings: read", 0, pat0);
    }
}

/* ------------------------------------------------------------------------ */
static char final_title[80];

static void test_final(void)
{
    /* "device still works after <n> hostile actions" */
    char num[12];
    int k = 0;
    unsigned v = n_hostile;
    do { num[k++] = (char)('0' + v % 10); v /= 10; } while (v);
    const char *a = "device still works after ";
    char *p = final_title;
    while (*a) *p++ = *a++;
    while (k) *p++ = num[--k];
    a = " hostile actions";
    while (*a) *p++ = *a++;
    *p = 0;
    section(final_title);
    reset_dev();
    CHECK("final: reset", rd(R_STATUS), 0);
    CHECK("final: initialised", init_dev(), 1);
    read_sector("final: sector 0", 0, pat0);
    read_sector("final: sector 1 as written", 1, pat1);
    reset_dev();
    CHECK("final: left reset", rd(R_STATUS), 0);
}

int main(void)
{
    begin("virtio-hostile");
    fill_pattern(pat0, PAT0);
    fill_pattern(pat1, PAT1);
    test_init();
    test_negotiation();
    test_valid();
    test_ignored();
    test_hostile_rings();
    test_hostile_queues();
    test_inflight();
    test_garbage();
    test_random_rings();
    test_final();
    return finish();
}
