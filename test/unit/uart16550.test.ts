// The 16550A at register level: DLAB banking, IIR priorities, THRE interrupt semantics, the RX FIFO
// with its host-side queue, and the exact sequences Linux's 8250 driver uses to probe the chip.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Uart16550 } from "../../src/devices/uart16550.js";

const RBR = 0, THR = 0, DLL = 0, IER = 1, DLM = 1, IIR = 2, FCR = 2, LCR = 3, MCR = 4, LSR = 5, MSR = 6, SCR = 7;

function setup() {
  const irqLog: boolean[] = [];
  let level = false;
  const sent: number[] = [];
  const uart = new Uart16550({ set: (l) => { level = l; irqLog.push(l); } }, (b) => sent.push(...b));
  const rd = (off: number): number => Number(uart.read(off, 1));
  const wr = (off: number, v: number): void => uart.write(off, 1, BigInt(v));
  return { uart, rd, wr, sent, irqLog, irq: () => level };
}

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);

test("reset state: no interrupt, transmitter empty, no data", () => {
  const { rd } = setup();
  assert.equal(rd(IIR), 0x01);
  assert.equal(rd(LSR), 0x60);
  assert.equal(rd(IER), 0);
  assert.equal(rd(MSR) & 0xf0, 0xb0, "CTS, DSR and DCD asserted like a connected cable");
});

test("DLAB banks the divisor latch over RBR/THR and IER", () => {
  const { rd, wr, sent } = setup();
  wr(LCR, 0x83); // DLAB, 8N1
  wr(DLL, 0x02);
  wr(DLM, 0x01);
  assert.equal(rd(DLL), 0x02);
  assert.equal(rd(DLM), 0x01);
  assert.deepEqual(sent, [], "divisor writes are not output");
  wr(LCR, 0x03);
  assert.equal(rd(IER), 0, "IER untouched by the DLM write");
  wr(THR, 0x41);
  assert.deepEqual(sent, [0x41]);
  wr(LCR, 0x83);
  assert.equal(rd(DLL), 0x02, "divisor kept");
  wr(SCR, 0x5a);
  assert.equal(rd(SCR), 0x5a);
});

test("THRE interrupt: raised by enabling ETBEI, cleared by reading IIR, re-raised by 0->1 (Linux's startup probe)", () => {
  const { rd, wr, irq } = setup();
  // serial8250_do_startup: IER=THRI, read IIR, IER=0, IER=THRI, read IIR. Both reads must show
  // THRE or Linux sets UART_BUG_THRE and falls back to a polling timer.
  wr(IER, 0x02);
  assert.equal(irq(), true);
  assert.equal(rd(IIR) & 0x0f, 0x02);
  assert.equal(irq(), false, "reading IIR that reports THRE clears it");
  assert.equal(rd(IIR) & 0x0f, 0x01);
  wr(IER, 0);
  wr(IER, 0x02);
  assert.equal(rd(IIR) & 0x0f, 0x02, "re-asserted when ETBEI goes 0->1 with THR empty");
  // UART_BUG_TXEN check: IER=THRI, read LSR then IIR; TEMT with NO_INT would mark the chip buggy.
  wr(IER, 0);
  wr(IER, 0x02);
  assert.equal(rd(LSR) & 0x40, 0x40);
  assert.equal(rd(IIR) & 0x01, 0, "an interrupt is pending");
});

test("writing THR clears THRE and the emptied THR raises it again", () => {
  const { rd, wr, irq, sent } = setup();
  wr(IER, 0x02);
  rd(IIR);
  assert.equal(irq(), false);
  wr(THR, 0x61);
  assert.deepEqual(sent, [0x61]);
  assert.equal(irq(), true, "the byte left at once, so THR is empty: a new THRE event");
  assert.equal(rd(LSR) & 0x60, 0x60);
  wr(IER, 0);
  assert.equal(irq(), false, "ETBEI off masks it");
});

test("IIR priority: line status > data available > THRE > modem status", () => {
  const { uart, rd, wr } = setup();
  wr(FCR, 0x01);
  wr(MCR, 0x10); // loopback, to produce an overrun and modem deltas
  for (let i = 0; i < 17; i++) wr(THR, i); // 17th overruns the 16-byte FIFO
  wr(MCR, 0x12); // RTS -> CTS change: DCTS
  wr(IER, 0x0f);
  assert.equal(rd(IIR), 0xc6, "receiver line status (overrun)");
  assert.equal(rd(LSR) & 0x03, 0x03, "DR and OE");
  assert.equal(rd(LSR) & 0x02, 0, "OE clears on read");
  assert.equal(uart.counters.overruns, 1);
  assert.equal(rd(IIR), 0xc4, "received data available (FIFO at or above trigger 1)");
  for (let i = 0; i < 16; i++) assert.equal(rd(RBR), i, "FIFO order kept, overrun byte lost");
  assert.equal(rd(IIR), 0xc2, "THRE");
  assert.equal(rd(IIR), 0xc0, "modem status, after THRE was cleared by the previous read");
  assert.equal(rd(MSR) & 0x01, 0x01, "DCTS");
  assert.equal(rd(IIR), 0xc1, "reading MSR cleared the deltas");
});

test("loopback wires the modem lines as Linux's autoconfig test expects", () => {
  const { rd, wr, sent } = setup();
  // autoconfig(): MCR = LOOP | OUT2 | RTS must read back MSR[7:4] = DCD | CTS (0x90).
  wr(MCR, 0x10 | 0x0a);
  assert.equal(rd(MSR) & 0xf0, 0x90);
  wr(MCR, 0x10 | 0x05); // DTR, OUT1
  assert.equal(rd(MSR) & 0xf0, 0x60, "DSR, RI");
  wr(MCR, 0x10);
  assert.equal(rd(MSR) & 0x0f, 0x04 | 0x02, "TERI on RI falling, DDSR");
  wr(THR, 0x33);
  assert.deepEqual(sent, [], "loopback output stays inside the chip");
  assert.equal(rd(RBR), 0x33);
  // autoconfig's IER test: IER=0 reads 0, IER=0x0f reads 0x0f.
  wr(IER, 0);
  assert.equal(rd(IER) & 0x0f, 0);
  wr(IER, 0xff);
  assert.equal(rd(IER), 0x0f, "only the four 16550 enable bits exist");
});

test("FIFO enable shows in IIR[7:6] and no 64-byte FIFO bit (detected as a plain 16550A)", () => {
  const { rd, wr } = setup();
  assert.equal(rd(IIR) >> 6, 0);
  wr(FCR, 0x01);
  assert.equal(rd(IIR) >> 6, 3);
  wr(FCR, 0x21); // 16750 64-byte FIFO request
  assert.equal(rd(IIR) & 0xe0, 0xc0);
  wr(LCR, 0xbf); // EFR probe: on a 16550A offset 2 still reads IIR
  assert.notEqual(rd(IIR), 0);
  wr(LCR, 0);
  wr(FCR, 0);
  assert.equal(rd(IIR) >> 6, 0);
});

test("RX FIFO: trigger level, character timeout, host queue refills as bytes are read", () => {
  const { uart, rd, wr, irq } = setup();
  wr(FCR, 0xc7); // enable, clear, trigger 14
  wr(IER, 0x01);
  uart.input(bytes("abc"));
  assert.equal(irq(), true);
  assert.equal(rd(IIR), 0xcc, "below the trigger level: character timeout");
  const long = "0123456789abcdefghijklmnopqrstuvwxyz";
  uart.input(bytes(long));
  assert.equal(uart.queued, 3 + long.length - 16);
  assert.equal(rd(IIR), 0xc4, "FIFO full, above trigger 14");
  let got = "";
  while (rd(LSR) & 1) got += String.fromCharCode(rd(RBR));
  assert.equal(got, "abc" + long, "nothing lost or reordered");
  assert.equal(irq(), false);
  assert.equal(rd(IIR), 0xc1);
  assert.equal(uart.counters.bytesIn, 3 + long.length);
});

test("without the FIFO the receiver holds one byte and the rest waits on the host side", () => {
  const { uart, rd, wr } = setup();
  wr(IER, 0x01);
  uart.input(bytes("xy"));
  assert.equal(rd(IIR), 0x04);
  assert.equal(uart.queued, 1);
  assert.equal(rd(RBR), 0x78);
  assert.equal(rd(RBR), 0x79);
  assert.equal(rd(LSR) & 1, 0);
});

test("FCR clears the RX FIFO; the line keeps delivering queued host bytes", () => {
  const { uart, rd, wr } = setup();
  wr(FCR, 0x01);
  uart.input(new Uint8Array(20).fill(0x61));
  wr(FCR, 0x03);
  assert.equal(uart.queued, 0, "the remaining 4 bytes moved into the emptied FIFO");
  let n = 0;
  while (rd(LSR) & 1) { rd(RBR); n++; }
  assert.equal(n, 4);
});

test("IRQ is not gated by OUT2 and follows the pending state", () => {
  const { uart, rd, wr, irq, irqLog } = setup();
  wr(MCR, 0); // no OUT2
  wr(IER, 0x01);
  uart.input(bytes("k"));
  assert.equal(irq(), true);
  rd(RBR);
  assert.equal(irq(), false);
  assert.deepEqual(irqLog, [true, false], "only level changes are signalled");
});

test("save and restore carry registers, FIFO and queued input", () => {
  const a = setup();
  a.wr(LCR, 0x83);
  a.wr(DLL, 12);
  a.wr(LCR, 0x03);
  a.wr(FCR, 0x41);
  a.wr(IER, 0x03);
  a.wr(MCR, 0x0b);
  a.wr(SCR, 0x99);
  a.uart.input(new TextEncoder().encode("hello, restored world!"));
  const state = a.uart.save();

  const b = setup();
  b.uart.restore(state);
  assert.equal(b.irq(), true, "restore drives the IRQ line");
  assert.equal(b.rd(LCR), 0x03);
  assert.equal(b.rd(MCR), 0x0b);
  assert.equal(b.rd(SCR), 0x99);
  assert.equal(b.rd(IER), 0x03);
  b.wr(LCR, 0x83);
  assert.equal(b.rd(DLL), 12);
  b.wr(LCR, 0x03);
  assert.equal(b.rd(IIR), 0xc4, "FIFO enabled, trigger 4 reached");
  let got = "";
  while (b.rd(LSR) & 1) got += String.fromCharCode(b.rd(RBR));
  assert.equal(got, "hello, restored world!");
  const c = setup();
  c.uart.restore(state);
  assert.deepEqual(c.uart.save(), state, "save(restore(s)) == s");
  assert.throws(() => b.uart.restore(new Uint8Array(3)), /UART state/);
});
