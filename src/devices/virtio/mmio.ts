// The virtio-mmio transport, version 2 (the modern interface; virtio 1.2 section 4.2): one
// 4 KiB window of 32-bit registers in front of a device model, and one interrupt line into the
// PLIC. Stores to the window are posted by the physical CPUs (src/vmm/vcb.ts), so a driver's
// QueueNotify costs it one trap and no round trip to this thread; loads (InterruptStatus, config)
// are exits served here.
//
// The driver is not trusted: registers it must not write at a given point are ignored, queue
// configurations that do not fit in guest RAM, and any protocol error a device model finds while
// it walks a ring, put the device into DEVICE_NEEDS_RESET (2.1.2): it stops using its queues,
// drops the work in flight, and tells the driver with a configuration-change interrupt. Only a
// reset (Status = 0) brings it back.
//
// Thread: the host's main thread (all MMIO, all device models).
import type { AccessSize, IrqLine, MmioDevice } from "../bus.js";
import { GuestDma } from "./dma.js";
import { Virtqueue, VirtioError, type QueueCounters } from "./queue.js";
import { VirtioDevice, bit, VIRTIO_F_RING_EVENT_IDX, VIRTIO_F_RING_INDIRECT_DESC, VIRTIO_F_VERSION_1, type DeviceHost } from "./device.js";

export const VIRTIO_MMIO_SIZE = 0x1000n;
const MAGIC = 0x74726976; // "virt"
const VERSION = 2;
const VENDOR = 0x56474e52; // "RNGV"

// Register offsets (4.2.2, table "MMIO Device Register Layout").
const R = {
  MagicValue: 0x000, Version: 0x004, DeviceID: 0x008, VendorID: 0x00c,
  DeviceFeatures: 0x010, DeviceFeaturesSel: 0x014, DriverFeatures: 0x020, DriverFeaturesSel: 0x024,
  QueueSel: 0x030, QueueNumMax: 0x034, QueueNum: 0x038, QueueReady: 0x044, QueueNotify: 0x050,
  InterruptStatus: 0x060, InterruptACK: 0x064, Status: 0x070,
  QueueDescLow: 0x080, QueueDescHigh: 0x084, QueueDriverLow: 0x090, QueueDriverHigh: 0x094,
  QueueDeviceLow: 0x0a0, QueueDeviceHigh: 0x0a4, SHMSel: 0x0ac, SHMLenLow: 0x0b0, SHMLenHigh: 0x0b4,
  SHMBaseLow: 0x0b8, SHMBaseHigh: 0x0bc, ConfigGeneration: 0x0fc, Config: 0x100,
} as const;

// Device status bits (2.1).
export const STATUS_ACKNOWLEDGE = 1;
export const STATUS_DRIVER = 2;
export const STATUS_DRIVER_OK = 4;
export const STATUS_FEATURES_OK = 8;
export const STATUS_DEVICE_NEEDS_RESET = 0x40;
export const STATUS_FAILED = 0x80;

const INT_USED_BUFFER = 1;
const INT_CONFIG_CHANGE = 2;

interface QueueRegs {
  num: number;
  ready: boolean;
  desc: number;
  driver: number;
  device: number;
  vq: Virtqueue | undefined;
}

export interface TransportCounters {
  notifications: number;
  interrupts: number;
  resets: number;
  errors: number; // times the device went into DEVICE_NEEDS_RESET
  ignored: number; // register writes the driver had no business making, and notifications of stopped queues
}

export interface VirtioStats {
  name: string;
  deviceId: number;
  status: number;
  lastError?: string;
  transport: TransportCounters;
  queues: QueueCounters[];
  device: Record<string, number>;
}

export class VirtioMmio implements MmioDevice {
  readonly name: string;
  readonly dma: GuestDma;
  private status = 0;
  private deviceFeaturesSel = 0;
  private driverFeaturesSel = 0;
  private driverFeatures = 0n;
  private queueSel = 0;
  private interruptStatus = 0;
  // Interrupt bits raised since the driver last read InterruptStatus. Its InterruptACK is a posted
  // store (vcb.ts) that may reach us after a completion raised the bit again; the driver cannot
  // have seen that event, so the ACK must not clear it (the line stays up and the driver looks
  // again), or the interrupt is lost and the driver waits forever.
  private unseenInterrupts = 0;
  private configGeneration = 0;
  private generationCount = 0;
  private readonly queues: QueueRegs[];
  // What queues counted before they were torn down by resets.
  private readonly past: QueueCounters[];
  readonly counters: TransportCounters = { notifications: 0, interrupts: 0, resets: 0, errors: 0, ignored: 0 };
  lastError: string | undefined;
  private readonly offered: bigint;
  // Told when the device fails, so the host can log why.
  onError: ((reason: string) => void) | undefined;

  constructor(readonly device: VirtioDevice, dma: GuestDma, private readonly irq: IrqLine) {
    this.name = device.name;
    this.dma = dma;
    this.offered = device.features | bit(VIRTIO_F_VERSION_1) | bit(VIRTIO_F_RING_INDIRECT_DESC) | bit(VIRTIO_F_RING_EVENT_IDX);
    this.queues = device.queueMax.map(() => ({ num: 0, ready: false, desc: 0, driver: 0, device: 0, vq: undefined }));
    this.past = device.queueMax.map(() => ({ notifications: 0, requests: 0, bytesIn: 0, bytesOut: 0, interrupts: 0, suppressed: 0 }));
  }

  read(offset: number, size: AccessSize): bigint {
    if (offset >= R.Config) return this.configRead(offset - R.Config, size);
    if (size !== 4 || offset % 4 !== 0) return 0n; // registers are 32-bit (4.2.2.2)
    return BigInt(this.reg(offset) >>> 0);
  }

  private reg(offset: number): number {
    const q = this.queues[this.queueSel];
    switch (offset) {
      case R.MagicValue: return MAGIC;
      case R.Version: return VERSION;
      case R.DeviceID: return this.device.deviceId;
      case R.VendorID: return VENDOR;
      case R.DeviceFeatures: return this.deviceFeaturesSel > 1 ? 0 : Number((this.offered >> BigInt(32 * this.deviceFeaturesSel)) & 0xffff_ffffn);
      case R.QueueNumMax: return q ? this.device.queueMax[this.queueSel]! : 0;
      case R.QueueReady: return q?.ready ? 1 : 0;
      case R.InterruptStatus:
        this.unseenInterrupts = 0;
        return this.interruptStatus;
      case R.Status: return this.status;
      case R.SHMLenLow: case R.SHMLenHigh: case R.SHMBaseLow: case R.SHMBaseHigh: return 0xffff_ffff; // no shared memory regions
      case R.ConfigGeneration: return this.configGeneration;
      default: return 0;
    }
  }

  write(offset: number, size: AccessSize, value: bigint): void {
    if (offset >= R.Config) {
      this.configWrite(offset - R.Config, size, value);
      return;
    }
    if (size !== 4 || offset % 4 !== 0) {
      this.counters.ignored++;
      return;
    }
    const v = Number(value & 0xffff_ffffn);
    const q = this.queues[this.queueSel];
    // Queue registers may change only while the queue is not ready (4.2.3.2).
    const qcfg = q !== undefined && !q.ready && (this.status & STATUS_DEVICE_NEEDS_RESET) === 0;
    switch (offset) {
      case R.DeviceFeaturesSel: this.deviceFeaturesSel = v; return;
      case R.DriverFeaturesSel: this.driverFeaturesSel = v; return;
      case R.DriverFeatures:
        if ((this.status & STATUS_FEATURES_OK) !== 0 || this.driverFeaturesSel > 1) { this.counters.ignored++; return; }
        {
          const shift = BigInt(32 * this.driverFeaturesSel);
          this.driverFeatures = (this.driverFeatures & ~(0xffff_ffffn << shift)) | (BigInt(v) << shift);
        }
        return;
      case R.QueueSel: this.queueSel = v; return;
      case R.QueueNum: if (qcfg) q.num = v; else this.counters.ignored++; return;
      case R.QueueDescLow: if (qcfg) q.desc = lo(q.desc, v); else this.counters.ignored++; return;
      case R.QueueDescHigh: if (qcfg) q.desc = hi(q.desc, v); else this.counters.ignored++; return;
      case R.QueueDriverLow: if (qcfg) q.driver = lo(q.driver, v); else this.counters.ignored++; return;
      case R.QueueDriverHigh: if (qcfg) q.driver = hi(q.driver, v); else this.counters.ignored++; return;
      case R.QueueDeviceLow: if (qcfg) q.device = lo(q.device, v); else this.counters.ignored++; return;
      case R.QueueDeviceHigh: if (qcfg) q.device = hi(q.device, v); else this.counters.ignored++; return;
      case R.QueueReady: this.setReady(v === 1); return;
      case R.QueueNotify: this.notify(v); return;
      case R.InterruptACK:
        this.interruptStatus &= ~(v & ~this.unseenInterrupts);
        this.irq.set(this.interruptStatus !== 0);
        return;
      case R.Status: this.setStatus(v & 0xff); return;
      default: this.counters.ignored++;
    }
  }

  private setReady(on: boolean): void {
    const q = this.queues[this.queueSel];
    if (!q || (this.status & STATUS_DEVICE_NEEDS_RESET) !== 0) { this.counters.ignored++; return; }
    if (!on) {
      this.retire(this.queueSel);
      q.ready = false;
      return;
    }
    if (q.ready) return;
    const max = this.device.queueMax[this.queueSel]!;
    if (q.num > max) return this.fail(`queue ${this.queueSel} size ${q.num} is larger than its maximum ${max}`);
    try {
      q.vq = new Virtqueue(this.dma, { size: q.num, desc: q.desc, driver: q.driver, device: q.device }, this.has(VIRTIO_F_RING_EVENT_IDX));
      q.ready = true;
    } catch (e) {
      if (!(e instanceof VirtioError)) throw e;
      this.fail(`queue ${this.queueSel}: ${e.message}`);
    }
  }

  private setStatus(v: number): void {
    if (v === 0) {
      this.reset();
      return;
    }
    if ((this.status & STATUS_DEVICE_NEEDS_RESET) !== 0) {
      // Only FAILED (the driver giving up) is worth keeping until the reset.
      this.status |= v & STATUS_FAILED;
      return;
    }
    // FEATURES_OK sticks only for a subset of what was offered that includes VERSION_1 (3.1.1).
    if ((v & STATUS_FEATURES_OK) !== 0 && (this.status & STATUS_FEATURES_OK) === 0) {
      const ok = (this.driverFeatures & ~this.offered) === 0n && (this.driverFeatures & bit(VIRTIO_F_VERSION_1)) !== 0n;
      if (!ok) v &= ~STATUS_FEATURES_OK;
    }
    const was = this.status;
    // The driver sets bits in order and never clears one without a reset (3.1.1).
    this.status = (was | v) & ~STATUS_DEVICE_NEEDS_RESET;
    if ((v & STATUS_DRIVER_OK) !== 0 && (was & STATUS_DRIVER_OK) === 0) {
      if ((this.status & STATUS_FEATURES_OK) === 0) return this.fail("DRIVER_OK without FEATURES_OK");
      this.device.activate(this.deviceHost());
      // Buffers made available before DRIVER_OK are the driver's to notify; look anyway.
      for (let i = 0; i < this.queues.length; i++) if (this.queues[i]!.vq) this.run(() => this.device.notify(i));
    }
  }

  has(n: number): boolean {
    return (this.driverFeatures & bit(n)) !== 0n && (this.status & STATUS_FEATURES_OK) !== 0;
  }

  private notify(q: number): void {
    const regs = this.queues[q];
    if (!regs?.vq || (this.status & STATUS_DRIVER_OK) === 0 || (this.status & STATUS_DEVICE_NEEDS_RESET) !== 0) {
      this.counters.ignored++;
      return;
    }
    this.counters.notifications++;
    regs.vq.counters.notifications++;
    this.run(() => this.device.notify(q));
  }

  // Runs device code; a protocol error it finds fails the device.
  private run(f: () => void): void {
    try {
      f();
    } catch (e) {
      if (!(e instanceof VirtioError)) throw e;
      this.fail(e.message);
    }
  }

  private deviceHost(): DeviceHost {
    const gen = this.generationCount;
    const self = this;
    return {
      dma: this.dma,
      get generation() { return self.generationCount; },
      queue: (q) => (this.generationCount === gen ? this.queues[q]?.vq : undefined),
      has: (n) => this.has(n),
      usedBuffers: (q) => {
        if (this.generationCount !== gen) return;
        const vq = this.queues[q]?.vq;
        if (vq?.wantsInterrupt()) this.interrupt(INT_USED_BUFFER);
      },
      configChanged: () => {
        if (this.generationCount !== gen) return;
        this.configGeneration++;
        if ((this.status & STATUS_DRIVER_OK) !== 0) this.interrupt(INT_CONFIG_CHANGE);
      },
      fail: (reason) => {
        if (this.generationCount === gen) this.fail(reason);
      },
    };
  }

  private interrupt(bits: number): void {
    this.counters.interrupts++;
    this.interruptStatus |= bits;
    this.unseenInterrupts |= bits;
    this.irq.set(true);
  }

  // The VM is going away: the device stops and drops its work, and nothing is reported.
  shutdown(): void {
    this.stopQueues();
    this.status |= STATUS_DEVICE_NEEDS_RESET;
  }

  // DEVICE_NEEDS_RESET: the device stops and drops its work; the driver is told.
  fail(reason: string): void {
    if ((this.status & STATUS_DEVICE_NEEDS_RESET) !== 0) return;
    this.counters.errors++;
    this.lastError = reason;
    this.stopQueues();
    this.status |= STATUS_DEVICE_NEEDS_RESET;
    if ((this.status & STATUS_DRIVER_OK) !== 0) {
      this.configGeneration++;
      this.interrupt(INT_CONFIG_CHANGE);
    }
    this.onError?.(reason);
  }

  private stopQueues(): void {
    this.generationCount++;
    this.device.reset();
    for (let i = 0; i < this.queues.length; i++) {
      this.retire(i);
      this.queues[i]!.ready = false;
    }
  }

  private retire(i: number): void {
    const q = this.queues[i]!;
    if (!q.vq) return;
    const c = q.vq.counters;
    const p = this.past[i]!;
    for (const k of Object.keys(p) as (keyof QueueCounters)[]) p[k] += c[k];
    q.vq = undefined;
  }

  private reset(): void {
    this.counters.resets++;
    this.stopQueues();
    for (const q of this.queues) Object.assign(q, { num: 0, desc: 0, driver: 0, device: 0 });
    this.status = 0;
    this.driverFeatures = 0n;
    this.deviceFeaturesSel = 0;
    this.driverFeaturesSel = 0;
    this.queueSel = 0;
    this.interruptStatus = 0;
    this.unseenInterrupts = 0;
    this.irq.set(false);
  }

  private configRead(off: number, size: AccessSize): bigint {
    const c = this.device.config;
    if (off + size > c.length) return 0n;
    let v = 0n;
    for (let i = size - 1; i >= 0; i--) v = (v << 8n) | BigInt(c[off + i]!);
    return v;
  }

  private configWrite(off: number, size: AccessSize, value: bigint): void {
    const c = this.device.config;
    if (off + size > c.length || !this.device.configWritable(off, size)) { this.counters.ignored++; return; }
    for (let i = 0; i < size; i++) c[off + i] = Number((value >> BigInt(8 * i)) & 0xffn);
    this.device.configWritten(off, size);
  }

  // The device's config space changed from the host's side (a resized disk, a balloon target).
  configChanged(): void {
    this.configGeneration++;
    if ((this.status & STATUS_DRIVER_OK) !== 0 && (this.status & STATUS_DEVICE_NEEDS_RESET) === 0) this.interrupt(INT_CONFIG_CHANGE);
  }

  stats(): VirtioStats {
    const queues = this.queues.map((q, i) => {
      const p = { ...this.past[i]! };
      if (q.vq) for (const k of Object.keys(p) as (keyof QueueCounters)[]) p[k] += q.vq.counters[k];
      return p;
    });
    return { name: this.name, deviceId: this.device.deviceId, status: this.status, lastError: this.lastError, transport: { ...this.counters }, queues, device: this.device.counters() };
  }
}

const lo = (x: number, v: number): number => Math.floor(x / 2 ** 32) * 2 ** 32 + v;
const hi = (x: number, v: number): number => (v >= 0x20_0000 ? NaN : v * 2 ** 32 + (x % 2 ** 32));
