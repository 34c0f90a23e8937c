// Many guests on one machine: one Host (one machine memory, its physical CPUs as worker threads)
// running several VMs at once. Four Debian guests booted together each answer their own
// commands; VMs of every size, vCPU count and virt mode created and destroyed in a loop give
// back every frame, and one that does not fit is refused saying what is free; guests that panic,
// spin, trap endlessly or call the firmware endlessly do not keep a healthy Debian guest beside
// them from answering, end or are stopped, and leave the host working.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { Host } from "../../src/host/host.js";
import { DEFAULT_CMDLINE } from "../../src/cli/run.js";
import { readNewc } from "../../src/host/images/cpio.js";
import { OutOfMachineMemory, mib, type MachineMemory } from "../../src/machine/memory.js";
import type { Vm, VmConfig, VirtMode } from "../../src/vm/vm.js";
import { ROOT } from "../helpers.js";
import { defaultGuest } from "./guest.js";
import { GuestConsole, command, sample, shell, stressKernel, until } from "./console.js";

const g = await defaultGuest();
const MiB = 1 << 20;
const BOOT_MS = 150_000;
const CMD_MS = 60_000;
const GUEST_KERNELS = join(ROOT, "build/guests");

function debian(): { kernel: Uint8Array; initrd: Uint8Array } {
  const d = g.need();
  return { kernel: readFileSync(d.kernel), initrd: readFileSync(d.initrd) };
}

function initSha256(initrd: Uint8Array): string {
  const init = readNewc(gunzipSync(initrd)).find((e) => e.path === "init");
  assert.ok(init?.type === "file" && init.data, "the initramfs has an /init file");
  return createHash("sha256").update(init.data).digest("hex");
}

function guestKernel(name: string): Uint8Array {
  const elf = join(GUEST_KERNELS, `${name}.elf`);
  assert.ok(existsSync(elf), `${elf} was not built (npm run build:programs)`);
  return readFileSync(elf);
}

// Every frame the allocator has handed out is in exactly one VM's account, and the accounts are
// those of the VMs the host has.
function checkAccounts(host: Host, what: string): void {
  const mem: MachineMemory = host.machine.mem;
  const accounts = mem.accountList();
  const held = accounts.reduce((n, a) => n + a.total, 0);
  assert.equal(mem.allocatedFrames, held, `${what}: allocated frames = the frames in the VMs' accounts`);
  assert.deepEqual(accounts.map((a) => a.name).sort(), host.list().map((v) => v.name).sort(), `${what}: one account per VM`);
  for (const vm of host.list()) {
    const f = vm.stats().frames;
    assert.equal(vm.account.total, f.ram + f.p2m + f.hart + f.vmm + f.shadow, `${what}: ${vm.name}'s frames by kind add up`);
    assert.equal(f.ram, vm.memoryBytes / 4096, `${what}: ${vm.name} holds its whole RAM from creation`);
  }
}

test("four Debian guests booted at once on one host each answer their own commands and power off", { skip: g.skip, timeout: 240_000 }, async () => {
  const { kernel, initrd } = debian();
  const sha = initSha256(initrd);
  const host = new Host();
  try {
    // Different vCPU counts and both virt modes, one with scattered RAM: all from one machine.
    const shapes: { cpus: number; virt: VirtMode; scatterSeed?: number }[] = [
      { cpus: 1, virt: "trap-and-emulate" },
      { cpus: 2, virt: "trap-and-emulate" },
      { cpus: 1, virt: "native" },
      { cpus: 1, virt: "trap-and-emulate", scatterSeed: 4 },
    ];
    const guests = shapes.map((s, i) => {
      const con = new GuestConsole();
      const vm = host.createVm({ name: `debian${i + 1}`, kernel, initrd, cmdline: DEFAULT_CMDLINE, memBytes: 128 * MiB, console: con.sink, ...s });
      return { n: i + 1, vm, con, ...s };
    });
    checkAccounts(host, "four VMs created");
    const t0 = performance.now();
    for (const { vm } of guests) host.start(vm);

    const results = await Promise.all(guests.map(async ({ n, vm, con, cpus }) => {
      await shell(vm, con, BOOT_MS);
      const bootS = (performance.now() - t0) / 1000;
      assert.equal((await command(vm, con, `echo vm-$((${n}*7))`, CMD_MS)).trim(), `vm-${n * 7}`, `${vm.name}: shell arithmetic`);
      assert.equal((await command(vm, con, "sha256sum /init", CMD_MS)).trim(), `${sha}  /init`, `${vm.name}: sha256sum /init`);
      assert.equal((await command(vm, con, "nproc", CMD_MS)).trim(), String(cpus), `${vm.name}: nproc`);
      // The kernel's count of the RAM the device tree gave it: this VM's own 128 MiB.
      assert.match(await command(vm, con, "dmesg | grep Memory:", CMD_MS), /Memory: \d+K\/131072K available/, `${vm.name} sees 128 MiB of RAM`);
      const sched = sample(host, vm); // the scheduler forgets a VM once it has stopped
      vm.input(new TextEncoder().encode("poweroff -f\n"));
      const r = await vm.finished;
      return { r, bootS, sched };
    }));

    const seconds = (performance.now() - t0) / 1000;
    guests.forEach(({ vm, con, n }, i) => {
      const { r, bootS, sched } = results[i]!;
      assert.equal(r.status, 0, `${vm.name} powered off cleanly: ${r.reason}\n${con.tail()}`);
      // Each console carries its own VM's answer only.
      for (const other of guests) {
        if (other.n !== n) assert.ok(!con.text.includes(`\nvm-${other.n * 7}`), `${vm.name}'s console shows no answer of ${other.vm.name}`);
      }
      console.log(`${vm.name} (${vm.virt}, ${vm.vcpus.length} vCPU): shell after ${bootS.toFixed(1)} s; by its last command ${(Number(sched.instructions) / 1e9).toFixed(2)}e9 instructions, ` +
        `ran ${(sched.runUs / 1e6).toFixed(1)} s, waited ${(sched.waitUs / 1e6).toFixed(1)} s for a physical CPU`);
    });
    console.log(`four guests on ${host.pcpus.length} physical CPUs: all powered off after ${seconds.toFixed(1)} s`);
    for (const { vm } of guests) await host.destroy(vm);
    assert.equal(host.machine.mem.allocatedFrames, 0, "every frame came back");
    assert.deepEqual(host.machine.mem.accountList(), [], "no account is left");
  } finally {
    await host.close();
  }
});

test("VMs of every shape created and destroyed in a loop give back every frame", { timeout: 120_000 }, async () => {
  const host = new Host({ machineBytes: 1024 * MiB, pcpus: 2 });
  const mem = host.machine.mem;
  try {
    const free0 = mem.freeFrameCount;
    const sizes = [16, 32, 48, 64, 96, 24, 128, 40];
    const bootable = ["sbi", "csr", "interrupts", "paging"];
    let booted = 0;
    const alive: Vm[] = [];
    // A deterministic mix: up to three VMs live at a time, so frames are given back while other
    // VMs (some with RAM scattered over the machine) still hold theirs.
    for (let i = 0; i < 32; i++) {
      const virt: VirtMode = i % 3 === 1 ? "native" : "trap-and-emulate";
      const boot = i % 5 === 2;
      const con = new GuestConsole();
      const name = `loop${i}`;
      const cfg: VmConfig = {
        name, cmdline: "", console: con.sink, virt,
        kernel: boot ? guestKernel(bootable[booted % bootable.length]!) : stressKernel("spin"),
        memBytes: (boot ? 64 : sizes[i % sizes.length]!) * MiB,
        cpus: boot ? 1 : 1 + (i % 4) + (i % 7 === 6 ? 4 : 0),
        scatterSeed: virt === "native" || i % 4 !== 0 ? undefined : 100 + i,
        shadowPoolFrames: i % 6 === 5 ? 64 : undefined,
      };
      const before = mem.allocatedFrames;
      const vm = host.createVm(cfg);
      assert.ok(mem.allocatedFrames - before >= cfg.memBytes / 4096, `${name}: creating it took its RAM's frames`);
      checkAccounts(host, `after creating ${name}`);
      if (boot) {
        booted++;
        host.start(vm);
        const r = await vm.finished;
        assert.equal(r.status, 0, `${name} (${virt}) passed its checks:\n${con.text}`);
        assert.match(con.text, /PASS \d+ checks\n$/, name);
        await host.destroy(vm);
      } else {
        alive.push(vm);
        // Every fourth one runs (the spinning kernel) and is destroyed while a physical CPU holds it.
        if (i % 4 === 3) {
          host.start(vm);
          await until(`${name} to run`, () => con.text.includes("spin 1\n"), 30_000, () => con.text);
        }
        if (alive.length > 3) await host.destroy(alive.splice((i * 7) % alive.length, 1)[0]!);
      }
      checkAccounts(host, `step ${i}`);
    }
    for (const vm of alive.splice(0)) await host.destroy(vm);
    assert.equal(booted, 6, "guest test kernels booted along the way");
    assert.equal(mem.allocatedFrames, 0, "every frame came back");
    assert.deepEqual(mem.accountList(), [], "no account is left");
    assert.equal(mem.freeFrameCount, free0, "the machine is as free as when it was new");
    assert.deepEqual(host.list(), [], "the host has no VM left");
  } finally {
    await host.close();
  }
});

test("a VM that does not fit is refused, saying how much machine memory is free", { timeout: 60_000 }, async () => {
  const host = new Host({ machineBytes: 256 * MiB, pcpus: 1 });
  const mem = host.machine.mem;
  const spin = (name: string, memMiB: number): VmConfig => ({
    name, kernel: stressKernel("spin"), cmdline: "", memBytes: memMiB * MiB, cpus: 1, virt: "trap-and-emulate", console: () => undefined,
  });
  const refused = (cfg: VmConfig): OutOfMachineMemory => {
    const before = mem.allocatedFrames;
    const free = mib(mem.freeFrameCount);
    let err: unknown;
    try {
      host.createVm(cfg);
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof OutOfMachineMemory, `${cfg.name} (${cfg.memBytes / MiB} MiB) is refused with OutOfMachineMemory, not ${String(err)}`);
    assert.ok(err.message.includes(`${free} of 256 MiB is free`), `the message says what is free (${free}): ${err.message}`);
    assert.ok(err.message.includes(`${cfg.memBytes / MiB} MiB RAM`), `the message says what was asked: ${err.message}`);
    assert.equal(mem.allocatedFrames, before, "a refused VM holds no frame");
    assert.equal(host.get(cfg.name!), undefined, "a refused VM is not on the host");
    return err;
  };
  try {
    console.log(`refused: ${refused(spin("huge", 512)).message}`);
    const a = host.createVm(spin("a", 96));
    const b = host.createVm(spin("b", 96));
    console.log(`refused: ${refused(spin("c", 96)).message}`);
    // Room given back is room again.
    await host.destroy(a);
    const c = host.createVm(spin("c", 96));
    host.start(c);
    await until("c to run", () => Number(c.instructions()) > 1e6, 30_000);
    checkAccounts(host, "after c replaced a");
    await host.destroy(b);
    await host.destroy(c);
    assert.equal(mem.allocatedFrames, 0, "every frame came back");
  } finally {
    await host.close();
  }
});

test("a dedicated partition reserves its shadow page tables up front and keeps them while idle", { timeout: 60_000 }, async () => {
  const host = new Host({ machineBytes: 256 * MiB, pcpus: 2 });
  const mem = host.machine.mem;
  const cfg = (name: string, dedicated: boolean, poolFrames: number): VmConfig => ({
    name, kernel: stressKernel("spin"), cmdline: "", memBytes: 32 * MiB, cpus: 1, virt: "trap-and-emulate", console: () => undefined,
    shadowPoolFrames: poolFrames, dedicated,
  });
  try {
    const shared = host.createVm(cfg("shared", false, 4096));
    const pinned = host.createVm(cfg("pinned", true, 4096));
    assert.ok(shared.stats().frames.shadow < 4096, `a shared VM starts with a few shadow frames (${shared.stats().frames.shadow})`);
    assert.equal(pinned.stats().frames.shadow, 4096, "a dedicated VM holds its whole shadow pool from creation");
    host.start(pinned);
    await until("pinned to run", () => Number(pinned.instructions()) > 1e6, 30_000);
    assert.equal(pinned.shrinkPools(), 0, "a dedicated VM's pool is not given back");
    assert.equal(pinned.stats().frames.shadow, 4096);
    // What does not fit with its whole pool is refused before anything is taken.
    const before = mem.allocatedFrames;
    assert.throws(() => host.createVm(cfg("big", true, 8192 * 8)), OutOfMachineMemory);
    assert.equal(mem.allocatedFrames, before, "the refused partition holds no frame");
    checkAccounts(host, "with a dedicated VM");
    await host.destroy(pinned);
    await host.destroy(shared);
    assert.equal(mem.allocatedFrames, 0, "every frame came back");
  } finally {
    await host.close();
  }
});

test("guests that panic, spin, trap or call the firmware endlessly leave a healthy Debian guest beside them answering", { skip: g.skip, timeout: 240_000 }, async () => {
  const { kernel, initrd } = debian();
  const sha = initSha256(initrd);
  const host = new Host();
  try {
    const cons = new Map<string, GuestConsole>();
    const make = (name: string, cfg: Partial<VmConfig>): Vm => {
      const con = new GuestConsole();
      cons.set(name, con);
      return host.createVm({ name, kernel, cmdline: "", memBytes: 64 * MiB, cpus: 1, virt: "trap-and-emulate", console: con.sink, ...cfg });
    };
    const healthy = make("healthy", { initrd, cmdline: DEFAULT_CMDLINE, memBytes: 128 * MiB });
    const panics = make("panics", { initrd, cmdline: `${DEFAULT_CMDLINE} rdinit=/nonexistent panic=-1`, memBytes: 128 * MiB });
    const bad = [
      make("spin", { kernel: stressKernel("spin") }),
      make("trapstorm", { kernel: stressKernel("trapstorm") }),
      make("trapstorm-native", { kernel: stressKernel("trapstorm"), virt: "native" }),
      make("hypercalls", { kernel: stressKernel("hypercalls") }),
    ];
    for (const vm of [healthy, panics, ...bad]) host.start(vm);

    // The guest that panics ends by itself: panic=-1 reboots at once, which ends the VM.
    const p = await panics.finished;
    const pc = cons.get("panics")!;
    assert.match(pc.text, /Kernel panic - not syncing/, `the guest panicked:\n${pc.tail()}`);
    assert.equal(p.status, 3, `its reboot request ended the VM (status 3): ${p.reason}`);
    console.log(`panicking guest: ended after ${p.seconds.toFixed(1)} s (${p.reason}); ${/Kernel panic - not syncing: [^\n]*/.exec(pc.text)?.[0]}`);

    const hc = cons.get("healthy")!;
    await shell(healthy, hc, BOOT_MS);
    const before = bad.map((vm) => sample(host, vm));
    assert.equal((await command(healthy, hc, "echo healthy-$((6*7))", CMD_MS)).trim(), "healthy-42");
    assert.equal((await command(healthy, hc, "sha256sum /init", CMD_MS)).trim(), `${sha}  /init`);
    const seq = createHash("sha256").update(Array.from({ length: 5000 }, (_, i) => `${i + 1}\n`).join("")).digest("hex");
    assert.equal((await command(healthy, hc, "seq 5000 | sha256sum", CMD_MS)).trim(), `${seq}  -`, "a pipeline's answer");

    // The bad guests were running all along, each taking CPU time beside the healthy one.
    const after = bad.map((vm) => sample(host, vm));
    bad.forEach((vm, i) => {
      assert.equal(vm.state, "running", `${vm.name} still runs (it never ends by itself)`);
      assert.ok(after[i]!.runUs > before[i]!.runUs, `${vm.name} was scheduled meanwhile`);
      const progress = Number(after[i]!.instructions - before[i]!.instructions) + after[i]!.traps - before[i]!.traps;
      assert.ok(progress > 0, `${vm.name} executed meanwhile (instructions retired or traps taken)`);
    });
    const hs = host.stats().vms.find((v) => v.name === "hypercalls")!;
    assert.ok((hs.hostExits.sbi ?? 0) > 10_000, `the hypercall guest reached the host's main thread (${hs.hostExits.sbi} SBI calls)`);
    const ts = host.stats().vms.find((v) => v.name === "trapstorm")!;
    assert.ok((ts.cpus[0]!.vmm!.reflected["illegal instruction"] ?? 0) > 100_000, `the VMM reflected the trap storm into the guest (${JSON.stringify(ts.cpus[0]!.vmm!.reflected)})`);
    console.log(`meanwhile: hypercall guest ${hs.hostExits.sbi} SBI calls, trap storm ${ts.cpus[0]!.vmm!.reflected["illegal instruction"]} illegal instructions reflected; ` +
      bad.map((vm, i) => `${vm.name} ran ${((after[i]!.runUs - before[i]!.runUs) / 1e3).toFixed(0)} ms`).join(", "));

    // The host stops them; each ends as destroyed, and the healthy guest goes on.
    for (const vm of bad) {
      await host.destroy(vm);
      assert.equal(vm.result?.status, 130, `${vm.name} was stopped by the host: ${vm.result?.reason}`);
      assert.equal(vm.state, "disposed");
    }
    assert.equal((await command(healthy, hc, "echo still-here", CMD_MS)).trim(), "still-here");
    healthy.input(new TextEncoder().encode("poweroff -f\n"));
    const h = await healthy.finished;
    assert.equal(h.status, 0, `the healthy guest powered off cleanly: ${h.reason}`);
    await host.destroy(healthy);
    await host.destroy(panics);

    // The host survived: a new guest on it runs to its end and passes its checks.
    const con = new GuestConsole();
    const after1 = host.createVm({ name: "after", kernel: guestKernel("sbi"), cmdline: "", memBytes: 64 * MiB, cpus: 1, virt: "trap-and-emulate", console: con.sink });
    host.start(after1);
    const r = await after1.finished;
    assert.equal(r.status, 0, `a guest started afterwards passes:\n${con.text}`);
    await host.destroy(after1);
    assert.equal(host.machine.mem.allocatedFrames, 0, "every frame came back");
  } finally {
    await host.close();
  }
});
