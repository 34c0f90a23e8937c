// NS16550A UART (TI/National PC16550D datasheet): eight byte-wide registers at offsets 0..7
// (reg-shift 0), a 16-byte receive FIFO, and a transmitter that is always ready because output is
// handed to the host at once. What Linux's 8250 driver checks is modelled with care: the THRE
// interrupt rules it probes at startup, the IIR FIFO bits it uses to recognise a 16550A, and the
// loopback modem lines its autoconfig test reads.
import type { AccessSize, IrqLine, MmioDevice } from "./bus.js";

export const UART_BASE = 0x1000_0000n;
export const UART_SIZE = 0x100n;
export const UART_IRQ = 10;
// 1.8432 MHz * 2, the clock QEMU's virt board advertises; only the divisor Linux computes depends on it.
export const UART_CLOCK_HZ = 3_686_400;

const FIFO_SIZE = 16;
// Host bytes waiting for room in the FIFO. Beyond this the guest is not reading at all; drop
// rather than grow without bound, and count it.
const HOST_QUEUE_MAX = 1 << 20;

// Register offsets (datasheet Table 2).
const RBR_THR_DLL = 0;
const IER_DLM = 1;
const IIR_FCR = 2;
const LCR = 3;
const MCR = 4;
const LSR = 5;
const MSR = 6;
const SCR = 7;

const IER_ERBFI = 0x01; // received data available
const IER_ETBEI = 0x02; // transmitter holding register empty
const IER_ELSI = 0x04; // receiver line status
const IER_EDSSI = 0x08; // modem status

// IIR interrupt identification, highest priority first (datasheet Table 4).
const IIR_NONE = 0x01;
const IIR_RLS = 0x06;
const IIR_RDA = 0x04;
const IIR_CTI = 0x0c;
const IIR_THRI = 0x02;
const IIR_MSI = 0x00;
const IIR_FIFO_ENABLED = 0xc0;

const FCR_FIFO_ENABLE = 0x01;
const FCR_CLEAR_RX = 0x02;
const FCR_TRIGGER = [1, 4, 8, 14];

const LCR_DLAB = 0x80;

const MCR_DTR = 0x01;
const MCR_RTS = 0x02;
const MCR_OUT1 = 0x04;
const MCR_OUT2 = 0x08;
const MCR_LOOP = 0x10;

const LSR_DR = 0x01;
const LSR_OE = 0x02;
const LSR_THRE = 0x20;
const LSR_TEMT = 0x40;

const MSR_CTS = 0x10;
const MSR_DSR = 0x20;
const MSR_RI = 0x40;
const MSR_DCD = 0x80;
const MSR_TERI = 0x04;
const MSR_DELTAS = 0x0f;
// With no real modem behind it, the line looks like a connected cable.
const MSR_IDLE_LINES = MSR_CTS | MSR_DSR | MSR_DCD;

export interface UartCounters {
  bytesIn: number;
  bytesOut: number;
  dropped: number;
  overruns: number;
}

const SAVE_VERSION = 1;
const SAVE_FIXED = 14 + FIFO_SIZE + 4;

export class Uart16550 implements MmioDevice {
  readonly name = "uart16550";
  readonly counters: UartCounters = { bytesIn: 0, bytesOut: 0, dropped: 0, overruns: 0 };

  private ier = 0;
  private lcr = 0;
  private mcr = 0;
  // LSR error bits (only OE can happen here: no parity, framing or break on a virtual line);
  // reading LSR clears them.
  private lsrErrors = 0;
  private msrLines = MSR_IDLE_LINES;
  private msrDeltas = 0;
  private scr = 0;
  private dll = 0;
  private dlm = 0;
  private fifoEnabled = false;
  private triggerLevel = 1;
  // The THRE interrupt is an event latch, not the LSR.THRE level: set when THR becomes empty or
  // ETBEI is enabled while it is empty, cleared by an IIR read that reports it or a THR write.
  private thrIpending = false;
  private readonly rx: number[] = [];
  private readonly hostQueue: Uint8Array[] = [];
  private hostHead = 0;
  private hostQueued = 0;
  private irqLevel = false;

  // The IRQ is deliberately not gated by MCR.OUT2. OUT2 gating is a PC-board habit (the ISA
  // line went through OUT2); on this board INTR is wired straight to the PLIC, as on QEMU's
  // virt. Linux's 8250 driver raises OUT2 whenever it has an IRQ, so it works either way, but a
  // guest that never sets OUT2 (firmware, other kernels) would otherwise never see an interrupt.
  constructor(private readonly irq: IrqLine, private readonly out: (bytes: Uint8Array) => void) {}

  // Bytes typed or pasted on the host side of the line.
  input(bytes: Uint8Array): void {
    const room = HOST_QUEUE_MAX - this.hostQueued;
    const take = Math.min(room, bytes.length);
    if (take < bytes.length) this.counters.dropped += bytes.length - take;
    if (take > 0) {
      this.hostQueue.push(bytes.slice(0, take));
      this.hostQueued += take;
    }
    this.feed();
    this.updateIrq();
  }

  // Host bytes not yet in the receive FIFO.
  get queued(): number {
    return this.hostQueued;
  }

  read(offset: number, _size: AccessSize): bigint {
    return BigInt(this.readReg(offset));
  }

  write(offset: number, _size: AccessSize, value: bigint): void {
    this.writeReg(offset, Number(value & 0xffn));
  }

  private readReg(offset: number): number {
    const dlab = (this.lcr & LCR_DLAB) !== 0;
    let v = 0;
    switch (offset) {
      case RBR_THR_DLL:
        if (dlab) return this.dll;
        v = this.rx.shift() ?? 0;
        this.feed();
        break;
      case IER_DLM:
        return dlab ? this.dlm : this.ier;
      case IIR_FCR: {
        const id = this.interruptId();
        if (id === IIR_THRI) this.thrIpending = false;
        v = id | (this.fifoEnabled ? IIR_FIFO_ENABLED : 0);
        break;
      }
      case LCR:
        return this.lcr;
      case MCR:
        return this.mcr;
      case LSR:
        v = (this.rx.length > 0 ? LSR_DR : 0) | this.lsrErrors | LSR_THRE | LSR_TEMT;
        this.lsrErrors = 0;
        break;
      case MSR:
        v = this.msrLines | this.msrDeltas;
        this.msrDeltas = 0;
        break;
      case SCR:
        return this.scr;
      default:
        return 0;
    }
    this.updateIrq();
    return v;
  }

  private writeReg(offset: number, v: number): void {
    const dlab = (this.lcr & LCR_DLAB) !== 0;
    switch (offset) {
      case RBR_THR_DLL:
        if (dlab) this.dll = v;
        else this.transmit(v);
        break;
      case IER_DLM:
        if (dlab) {
          this.dlm = v;
        } else {
          // Enabling ETBEI while THR is empty raises THRE at once; Linux's startup test (and its
          // UART_BUG_TXEN check) toggles IER.ETBEI and expects IIR to show it each time.
          if ((this.ier & IER_ETBEI) === 0 && (v & IER_ETBEI) !== 0) this.thrIpending = true;
          this.ier = v & 0x0f;
        }
        break;
      case IIR_FCR:
        this.writeFcr(v);
        break;
      case LCR:
        this.lcr = v;
        break;
      case MCR:
        this.writeMcr(v & 0x1f);
        break;
      case SCR:
        this.scr = v;
        break;
      default:
        return; // LSR and MSR writes are factory-test only
    }
    this.updateIrq();
  }

  private transmit(byte: number): void {
    this.thrIpending = false;
    if (this.mcr & MCR_LOOP) {
      // Loopback: the transmitter feeds the receiver and nothing leaves the chip.
      this.receive(byte);
    } else {
      this.counters.bytesOut++;
      this.out(Uint8Array.of(byte));
    }
    // The byte left THR at once, so THR is empty again: a fresh THRE event.
    this.thrIpending = true;
  }

  private writeFcr(v: number): void {
    // FCR bits other than FIFO enable take effect only with FIFO enable set in the same write.
    const enable = (v & FCR_FIFO_ENABLE) !== 0;
    if (enable !== this.fifoEnabled) this.rx.length = 0; // changing mode clears the FIFOs
    this.fifoEnabled = enable;
    if (enable) {
      if (v & FCR_CLEAR_RX) this.rx.length = 0;
      this.triggerLevel = FCR_TRIGGER[(v >> 6) & 3]!;
    }
    this.feed();
  }

  private writeMcr(v: number): void {
    const wasLoop = (this.mcr & MCR_LOOP) !== 0;
    this.mcr = v;
    let lines = MSR_IDLE_LINES;
    // In loopback the modem inputs follow the outputs: CTS=RTS, DSR=DTR, RI=OUT1, DCD=OUT2.
    if (v & MCR_LOOP) {
      lines = (v & MCR_RTS ? MSR_CTS : 0) | (v & MCR_DTR ? MSR_DSR : 0) | (v & MCR_OUT1 ? MSR_RI : 0) |
        (v & MCR_OUT2 ? MSR_DCD : 0);
    }
    const changed = lines ^ this.msrLines;
    // Delta bits: DCTS, DDSR, DDCD on any change; TERI only when RI goes inactive.
    let deltas = ((changed & MSR_CTS) ? 0x01 : 0) | ((changed & MSR_DSR) ? 0x02 : 0) | ((changed & MSR_DCD) ? 0x08 : 0);
    if ((changed & MSR_RI) && (lines & MSR_RI) === 0) deltas |= MSR_TERI;
    this.msrDeltas |= deltas & MSR_DELTAS;
    this.msrLines = lines;
    if (wasLoop && (v & MCR_LOOP) === 0) this.feed();
  }

  private capacity(): number {
    return this.fifoEnabled ? FIFO_SIZE : 1;
  }

  private receive(byte: number): void {
    if (this.rx.length >= this.capacity()) {
      // The FIFO keeps its contents; the new character is lost (datasheet LSR bit 1).
      this.lsrErrors |= LSR_OE;
      this.counters.overruns++;
      return;
    }
    this.rx.push(byte);
  }

  // Move host bytes into the FIFO while there is room. In loopback the receiver is disconnected
  // from the line, so host input waits.
  private feed(): void {
    if (this.mcr & MCR_LOOP) return;
    const cap = this.capacity();
    while (this.rx.length < cap && this.hostQueued > 0) {
      const chunk = this.hostQueue[0]!;
      this.rx.push(chunk[this.hostHead++]!);
      this.hostQueued--;
      this.counters.bytesIn++;
      if (this.hostHead === chunk.length) {
        this.hostQueue.shift();
        this.hostHead = 0;
      }
    }
  }

  // The highest-priority enabled interrupt (datasheet Table 4).
  private interruptId(): number {
    if ((this.ier & IER_ELSI) && this.lsrErrors) return IIR_RLS;
    if ((this.ier & IER_ERBFI) && this.rx.length > 0) {
      if (!this.fifoEnabled || this.rx.length >= this.triggerLevel) return IIR_RDA;
      // Below the trigger level the chip reports a character timeout after four character times
      // without activity. The FIFO is only below it when no more input is queued, so there is
      // nothing to wait for: report it at once.
      return IIR_CTI;
    }
    if ((this.ier & IER_ETBEI) && this.thrIpending) return IIR_THRI;
    if ((this.ier & IER_EDSSI) && this.msrDeltas) return IIR_MSI;
    return IIR_NONE;
  }

  private updateIrq(force = false): void {
    const level = this.interruptId() !== IIR_NONE;
    if (level !== this.irqLevel || force) {
      this.irqLevel = level;
      this.irq.set(level);
    }
  }

  save(): Uint8Array {
    const out = new Uint8Array(SAVE_FIXED + this.hostQueued);
    const dv = new DataView(out.buffer);
    out.set([
      SAVE_VERSION, this.ier, this.lcr, this.mcr, this.lsrErrors, this.msrLines, this.msrDeltas, this.scr,
      this.dll, this.dlm, this.fifoEnabled ? 1 : 0, this.triggerLevel, this.thrIpending ? 1 : 0, this.rx.length,
    ]);
    out.set(this.rx, 14);
    dv.setUint32(14 + FIFO_SIZE, this.hostQueued, true);
    let at = SAVE_FIXED;
    this.hostQueue.forEach((chunk, i) => {
      const part = i === 0 ? chunk.subarray(this.hostHead) : chunk;
      out.set(part, at);
      at += part.length;
    });
    return out;
  }

  restore(b: Uint8Array): void {
    if (b.length < SAVE_FIXED || b[0] !== SAVE_VERSION) throw new Error("UART state: unknown format");
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    const queued = dv.getUint32(14 + FIFO_SIZE, true);
    const rxLen = b[13]!;
    if (rxLen > FIFO_SIZE || b.length !== SAVE_FIXED + queued) throw new Error("UART state: corrupt");
    [, this.ier, this.lcr, this.mcr, this.lsrErrors, this.msrLines, this.msrDeltas, this.scr, this.dll, this.dlm] =
      Array.from(b.subarray(0, 10));
    this.fifoEnabled = b[10] === 1;
    this.triggerLevel = b[11]!;
    this.thrIpending = b[12] === 1;
    this.rx.length = 0;
    this.rx.push(...b.subarray(14, 14 + rxLen));
    this.hostQueue.length = 0;
    this.hostHead = 0;
    this.hostQueued = queued;
    if (queued > 0) this.hostQueue.push(b.slice(SAVE_FIXED));
    this.updateIrq(true);
  }
}
