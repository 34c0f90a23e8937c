// Networks: two default Debian guests on one host, each with a virtio-net card on the host's
// virtual switch. They ping each other and move 10 MiB over TCP (busybox nc), checked by
// SHA-256 on both ends; the switch learned both MACs and forwarded unicast only where it had to.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Host } from "../../src/host/host.js";
import { macFor } from "../../src/host/net/switch.js";
import { readInput } from "../../src/cli/args.js";
import { defaultGuest } from "./guest.js";
import { GuestConsole, command, shell } from "./console.js";

const g = await defaultGuest();
const BOOT_MS = 180_000;
const CMD_MS = 240_000;

test("two guests on the host's switch: ping both ways, 10 MiB over TCP with matching checksums", { skip: g.skip, timeout: 3 * BOOT_MS }, async () => {
  const guest = g.need();
  const host = new Host({ machineBytes: 1 << 30 });
  try {
    const names = ["left", "right"];
    const cons = names.map(() => new GuestConsole());
    const vms = names.map((name, i) => host.createVm({
      name, kernel: readInput(guest.kernel), initrd: readInput(guest.initrd), cmdline: "console=ttyS0 panic=-1 loglevel=1", memBytes: 256 << 20, cpus: 1,
      virt: "trap-and-emulate", console: cons[i]!.sink, nics: [{ port: host.switch.port(`${name}/eth0`), mac: macFor(name, 0) }],
    }));
    for (const vm of vms) host.start(vm);
    await Promise.all(vms.map((vm, i) => shell(vm, cons[i]!, BOOT_MS)));
    const [a, b] = vms as [typeof vms[0], typeof vms[0]];
    const [ca, cb] = cons as [GuestConsole, GuestConsole];
    const mac = (n: string): string => [...macFor(n, 0)].map((x) => x.toString(16).padStart(2, "0")).join(":");
    assert.equal(await command(a, ca, "cat /sys/class/net/eth0/address", CMD_MS), `${mac("left")}\n`, "the MAC from the device's config space");
    for (const [vm, con, ip] of [[a, ca, "10.0.7.1"], [b, cb, "10.0.7.2"]] as const) {
      await command(vm, con, `ip addr add ${ip}/24 dev eth0 && ip link set eth0 up`, CMD_MS);
    }
    assert.match(await command(a, ca, "ping -c 3 -W 5 10.0.7.2", CMD_MS), /3 packets transmitted, 3 packets received/);
    assert.match(await command(b, cb, "ping -c 2 -W 5 10.0.7.1", CMD_MS), /2 packets transmitted, 2 packets received/);

    // 10 MiB of random data from left to right.
    await command(a, ca, "dd if=/dev/urandom of=/tmp/out bs=1M count=10 2>/dev/null", CMD_MS);
    const sent = (await command(a, ca, "sha256sum /tmp/out", CMD_MS)).split(" ")[0]!;
    // The listener runs in the background on the right; its shell prompt comes back at once.
    await command(b, cb, "nc -l -p 5001 > /tmp/in &", CMD_MS);
    await command(b, cb, "sleep 1", CMD_MS);
    await command(a, ca, "nc -w 5 10.0.7.2 5001 < /tmp/out", CMD_MS);
    await command(b, cb, "wait", CMD_MS);
    assert.equal((await command(b, cb, "sha256sum /tmp/in", CMD_MS)).split(" ")[0], sent, "10 MiB arrived intact");

    const st = host.switch.stats();
    assert.equal(st.macs, 2, "the switch learned both guests' MACs");
    const nic = (vm: typeof a): Record<string, number> => vm.stats().virtio.find((d) => d.name === "virtio-net eth0")!.device;
    assert.ok(nic(a).txBytes >= 10 << 20, `left sent the data (${nic(a).txBytes} bytes)`);
    assert.ok(nic(b).rxBytes >= 10 << 20, `right received it (${nic(b).rxBytes} bytes)`);
    for (const vm of vms) for (const d of vm.stats().virtio) assert.equal(d.lastError, undefined, `${vm.name} ${d.name}: no protocol error`);
  } finally {
    await host.close();
  }
});
