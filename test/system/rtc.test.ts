// The Goldfish RTC with the real Debian guest (`ringvisor run`, commands on piped stdin): the
// kernel's rtc-goldfish driver binds to the board's node and sets the system clock from it at boot,
// so the guest's `date` is the host's; an alarm armed through /dev/rtc0 interrupts the guest when
// it is due; and the guest can set the clock (`hwclock -w`) and read it back.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { writeNewc } from "../../src/host/images/cpio.js";
import { ROOT, ringvisor, type CliResult } from "../helpers.js";
import { defaultGuest } from "./guest.js";
import { session, sessionDiag } from "./console.js";

const BOOT_TIMEOUT_MS = 180_000;
const g = await defaultGuest();
const HAVE_CC = spawnSync("riscv64-linux-gnu-gcc", ["--version"]).status === 0;
const dir = mkdtempSync(join(tmpdir(), "ringvisor-rtc-"));
process.on("exit", () => rmSync(dir, { recursive: true, force: true }));

// Runs `commands` piped to the guest's console: what each printed, by command.
function drive(args: string[], commands: string[]): { r: CliResult; out: (command: string) => string } {
  const r = ringvisor(args, commands.map((c) => `${c}\n`).join(""), BOOT_TIMEOUT_MS);
  const s = session(r.stdout);
  const diag = sessionDiag(r.stdout, r.status, r.stderr, s);
  assert.notEqual(r.status, null, `the run did not end within ${BOOT_TIMEOUT_MS} ms\n${diag}`);
  const { steps } = s;
  assert.deepEqual(steps.map((x) => x.command), commands, `each command at its own prompt\n${diag}`);
  assert.equal(r.status, 0, `clean poweroff\n${diag}`);
  return { r, out: (command) => steps.find((x) => x.command === command)!.output };
}

const hostSeconds = (): number => Math.floor(Date.now() / 1000);
// The guest's clock is set from the RTC to the second and then runs on the timer; a few seconds
// either side of the run's host times covers the truncation and nothing more.
const SLACK_S = 5;

test("the guest's clock is the host's, set by the goldfish RTC at boot", { skip: g.skip, timeout: BOOT_TIMEOUT_MS }, () => {
  g.need();
  const commands = ["date +%s", "dmesg | grep -i rtc", "poweroff -f"];
  const t0 = hostSeconds();
  const { out } = drive(["run"], commands);
  const t1 = hostSeconds();

  const date = Number(out("date +%s").trim());
  console.log(`guest date +%s ${date}, host ${t0}..${t1}`);
  assert.ok(date >= t0 - SLACK_S && date <= t1 + SLACK_S, `guest time ${date} within the run's host time ${t0}..${t1}`);

  const dmesg = out("dmesg | grep -i rtc");
  assert.match(dmesg, /goldfish_rtc 101000\.rtc: registered as rtc0/);
  // drivers/rtc/class.c (rtc_hctosys): "setting system clock to %ptR UTC (%lld)".
  const set = /goldfish_rtc 101000\.rtc: setting system clock to \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d UTC \((\d+)\)/.exec(dmesg);
  assert.ok(set, `the driver set the system clock:\n${dmesg}`);
  const boot = Number(set[1]);
  assert.ok(boot >= t0 - SLACK_S && boot <= t1 + SLACK_S, `RTC at boot ${boot} within ${t0}..${t1}`);
});

// test/system/programs/rtc-alarm.c, built with the cross compiler and appended to the default
// initramfs as a second gzip'd newc archive (the kernel unpacks it after the first).
function alarmInitrd(defaultInitrd: string): string {
  const elf = join(dir, "rtc-alarm");
  const cc = spawnSync("riscv64-linux-gnu-gcc", ["-static", "-O2", "-o", elf, join(ROOT, "test/system/programs/rtc-alarm.c")], { encoding: "utf8" });
  assert.equal(cc.status, 0, `riscv64-linux-gnu-gcc failed:\n${cc.stderr}`);
  const extra = writeNewc([{ path: "bin/rtc-alarm", type: "file", perm: 0o755, data: readFileSync(elf) }]);
  const path = join(dir, "initramfs-rtc.cpio.gz");
  writeFileSync(path, Buffer.concat([readFileSync(defaultInitrd), gzipSync(extra)]));
  return path;
}

test("an RTC alarm interrupts the guest when due; the guest sets the RTC with hwclock -w",
  { skip: g.skip || (!HAVE_CC && "riscv64-linux-gnu-gcc not installed (npm run setup installs it)"), timeout: BOOT_TIMEOUT_MS }, () => {
    const guest = g.need();
    const initrd = alarmInitrd(guest.initrd);
    const SET = 2_000_000_000; // 2033-05-18T03:33:20Z
    const commands = [
      "rtc-alarm 2",
      "grep rtc /proc/interrupts",
      // Short commands: ash's line editor redraws longer ones at the console's width.
      `date -s @${SET} >/dev/null`,
      "hwclock -w",
      "cat /sys/class/rtc/rtc0/since_epoch",
      "hwclock -r -u",
      "poweroff -f",
    ];
    const { out } = drive(["run", "--kernel", guest.kernel, "--initrd", initrd], commands);

    const alarm = /rtc-alarm: alarm at (\d+), flags 0x([0-9a-f]+), events (\d+), waited ([\d.]+) s/.exec(out(commands[0]!));
    assert.ok(alarm, `the alarm program reported:\n${out(commands[0]!)}`);
    console.log(alarm[0]);
    // include/uapi/linux/rtc.h: RTC_IRQF 0x80, RTC_AF 0x20.
    assert.equal(Number.parseInt(alarm[2]!, 16) & 0xa0, 0xa0, "an alarm interrupt");
    assert.ok(Number(alarm[3]) >= 1, "at least one event");
    const waited = Number(alarm[4]);
    // Armed for the whole second two seconds on: 1-2 s of waiting, and not much more.
    assert.ok(waited >= 0.9 && waited <= 3.5, `waited ${waited} s for a 2 s alarm`);

    // The IRQ line is the PLIC's source 11, named after the platform device.
    const irq = /^\s*\d+:\s+(\d+)\s.*\b11\b.*101000\.rtc/m.exec(out(commands[1]!));
    assert.ok(irq, `/proc/interrupts has the RTC on PLIC source 11:\n${out(commands[1]!)}`);
    assert.ok(Number(irq[1]) >= 1, "and counted its interrupt");

    assert.equal(out("hwclock -w"), "", "hwclock -w succeeded");
    const since = Number(out("cat /sys/class/rtc/rtc0/since_epoch").trim());
    assert.ok(since >= SET && since <= SET + 60, `the RTC reads back the time written (${since})`);
    assert.match(out("hwclock -r -u"), /2033/);
  });
