// Ballooning with the default Debian guest's own virtio_balloon driver: the host asks for RAM
// back, the guest inflates, and the machine frames really return to the host's pool (the VM's
// account shrinks, the machine's free frames grow); the guest's statistics arrive on the stats
// queue; deflating gives the guest its memory back, zeroed, and it can use all of it again
// (a 100 MiB tmpfs file, more than was free while inflated, checksummed).
import { test } from "node:test";
import assert from "node:assert/strict";
import { Host } from "../../src/host/host.js";
import { readInput } from "../../src/cli/args.js";
import { defaultGuest } from "./guest.js";
import { GuestConsole, command, shell, until } from "./console.js";

const g = await defaultGuest();
const BOOT_MS = 180_000;
const CMD_MS = 180_000;
const MiB = 1 << 20;

for (const virt of ["trap-and-emulate", "native"] as const) {
  test(`balloon (${virt}): inflate to 160 MiB gives 96 MiB of frames back to the host; deflate gives them to the guest again`, { skip: g.skip, timeout: 3 * BOOT_MS }, async () => {
    const guest = g.need();
    const host = new Host({ machineBytes: 1 << 30 });
    try {
      const con = new GuestConsole();
      const vm = host.createVm({
        name: "ballooned", kernel: readInput(guest.kernel), initrd: readInput(guest.initrd), cmdline: "console=ttyS0 panic=-1 loglevel=1", memBytes: 256 * MiB, cpus: 1,
        virt, console: con.sink, scatterSeed: 5,
      });
      host.start(vm);
      await shell(vm, con, BOOT_MS);
      const cmd = (c: string): Promise<string> => command(vm, con, c, CMD_MS);
      const ramFrames = (): number => vm.account.counts().ram;
      const before = ramFrames();
      const freeBefore = host.machine.mem.freeFrameCount;
      assert.equal(before, (256 * MiB) / 4096);
      const memTotal = async (): Promise<number> => Number(/MemTotal:\s+(\d+) kB/.exec(await cmd("grep MemTotal /proc/meminfo"))![1]) * 1024;
      const total0 = await memTotal();

      const pages = vm.setBalloonTarget(160 * MiB);
      assert.equal(pages, (96 * MiB) / 4096);
      // The guest works while the driver inflates; poll its progress through its own counter.
      await until("the balloon to inflate", () => vm.balloon!.actual === pages && vm.balloonedPages === pages && ramFrames() === before - pages, CMD_MS, () => JSON.stringify(vm.balloon!.counters()), vm);
      assert.equal(host.machine.mem.freeFrameCount - freeBefore, pages - 1, "the frames are back in the host's pool (less the one sink frame)");
      assert.ok((await memTotal()) <= total0 - 90 * MiB, "the guest's MemTotal shrank by the balloon");
      assert.match(await cmd("echo ok after inflate"), /ok after inflate/);

      // Statistics: ask, and the driver answers on the stats queue.
      const t0 = vm.balloon!.statsAt;
      vm.balloon!.requestStats();
      await until("balloon statistics", () => vm.balloon!.statsAt > t0 && vm.balloon!.stats.totalMemory !== undefined, CMD_MS, () => JSON.stringify(vm.balloon!.stats), vm);
      assert.ok(vm.balloon!.stats.freeMemory! < 160 * MiB, `free memory as the guest reports it (${vm.balloon!.stats.freeMemory})`);

      // Deflate all the way, then use more memory than the guest had while inflated.
      vm.setBalloonTarget(256 * MiB);
      await until("the balloon to deflate", () => vm.balloon!.actual === 0 && vm.balloonedPages === 0, CMD_MS, () => JSON.stringify(vm.balloon!.counters()), vm);
      assert.equal(ramFrames(), before, "every page backed again");
      await cmd("dd if=/dev/urandom of=/tmp/big bs=1M count=100 2>/dev/null");
      const a = await cmd("sha256sum /tmp/big");
      assert.equal(await cmd("sha256sum /tmp/big"), a, "100 MiB in tmpfs read back the same");
      const st = vm.stats().virtio.find((d) => d.name === "virtio-balloon")!;
      assert.equal(st.lastError, undefined);
      assert.ok(st.device.inflated! >= pages && st.device.deflated! >= pages, JSON.stringify(st.device));
    } finally {
      await host.close();
    }
  });
}
