// Networks, with the default Debian guest and busybox's tools, all on this machine:
// - two guests on the host's virtual switch ping each other and move 10 MiB over TCP (nc),
//   checked by SHA-256 on both ends; the switch learned both MACs;
// - a guest behind its user-mode NAT takes its address by DHCP, resolves a name through the
//   NAT's DNS relay (to a DNS server the test runs on the host's loopback), pings the gateway,
//   fetches a file from an HTTP server on the host's loopback (as 10.0.2.2), and the host fetches
//   a file from busybox httpd in the guest through a forwarded port; checksums on both ends.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import { createSocket } from "node:dgram";
import { createHash, randomBytes } from "node:crypto";
import { Host } from "../../src/host/host.js";
import { Nat } from "../../src/host/net/nat.js";
import { macFor } from "../../src/host/net/switch.js";
import { readInput } from "../../src/cli/args.js";
import { defaultGuest } from "./guest.js";
import { GuestConsole, command, shell, until } from "./console.js";

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
      // No DHCP server on a switch: /init's udhcpc would only take the address away again.
      await command(vm, con, `killall udhcpc; ip addr add ${ip}/24 dev eth0`, CMD_MS);
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

// A DNS server that answers every A query with 192.0.2.44 (RFC 5737's documentation range).
function dnsServer(): Promise<{ port: number; close: () => void; queries: () => number }> {
  const sock = createSocket("udp4");
  let n = 0;
  sock.on("message", (q, rinfo) => {
    if (q.length < 12) return;
    n++;
    let end = 12;
    while (end < q.length && q[end] !== 0) end += q[end]! + 1;
    const question = q.subarray(12, end + 5);
    const qtype = question.readUInt16BE(question.length - 4);
    const header = Buffer.from([q[0]!, q[1]!, 0x81, 0x80, 0, 1, 0, qtype === 1 ? 1 : 0, 0, 0, 0, 0]);
    const answer = qtype === 1 ? Buffer.from([0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 44]) : Buffer.alloc(0);
    sock.send(Buffer.concat([header, question, answer]), rinfo.port, rinfo.address);
  });
  return new Promise((resolve) => sock.bind(0, "127.0.0.1", () => resolve({ port: sock.address().port, close: () => sock.close(), queries: () => n })));
}

test("user-mode NAT: DHCP, DNS through the relay, ping the gateway, HTTP from the host's loopback, and a forwarded port into the guest", { skip: g.skip, timeout: 2 * BOOT_MS }, async () => {
  const guest = g.need();
  const page = randomBytes(3 << 20);
  const web: Server = createServer((req, res) => {
    res.writeHead(200, { "content-type": "application/octet-stream", "content-length": page.length });
    res.end(page);
  });
  await new Promise<void>((r) => web.listen(0, "127.0.0.1", () => r()));
  const webPort = (web.address() as { port: number }).port;
  const dns = await dnsServer();
  // A free host port for the forward.
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, "127.0.0.1", () => r()));
  const fwdPort = (probe.address() as { port: number }).port;
  await new Promise<void>((r) => probe.close(() => r()));
  const nat = new Nat({ resolver: "127.0.0.1", resolverPort: dns.port });
  await nat.forward({ hostPort: fwdPort, guestPort: 8080 });
  const host = new Host({ machineBytes: 1 << 30 });
  try {
    const con = new GuestConsole();
    const vm = host.createVm({
      name: "natted", kernel: readInput(guest.kernel), initrd: readInput(guest.initrd), cmdline: "console=ttyS0 panic=-1 loglevel=1", memBytes: 256 << 20, cpus: 1,
      virt: "trap-and-emulate", console: con.sink, nics: [{ port: nat, mac: macFor("natted", 0) }],
    });
    host.start(vm);
    await shell(vm, con, BOOT_MS);
    const cmd = (c: string): Promise<string> => command(vm, con, c, CMD_MS);
    // /init asked for a lease in the background; wait for it.
    for (let i = 0; i < 30 && !(await cmd("ip -4 addr show eth0")).includes("inet 10.0.2.15/24"); i++) await cmd("sleep 1");
    assert.match(await cmd("ip -4 addr show eth0"), /inet 10\.0\.2\.15\/24/, "the address from the NAT's DHCP server");
    assert.match(await cmd("ip route"), /default via 10\.0\.2\.2 dev eth0/);
    assert.equal(await cmd("cat /etc/resolv.conf"), "nameserver 10.0.2.3\n");
    assert.match(await cmd("nslookup files.example 2>&1"), /Address:\s+192\.0\.2\.44/, "the name resolved by the host's DNS server, through the relay");
    assert.ok(dns.queries() > 0);
    assert.match(await cmd("ping -c 2 -W 5 10.0.2.2"), /2 packets transmitted, 2 packets received/);
    assert.equal(await cmd(`wget -q -O - http://10.0.2.2:${webPort}/ | sha256sum`), `${createHash("sha256").update(page).digest("hex")}  -\n`, "3 MiB from the host's loopback");

    // The other way: busybox httpd in the guest, reached through the forwarded port.
    await cmd("mkdir -p /srv && dd if=/dev/urandom of=/srv/blob bs=1M count=2 2>/dev/null");
    const inGuest = (await cmd("sha256sum /srv/blob")).split(" ")[0];
    await cmd("httpd -p 8080 -h /srv");
    let got: Buffer | undefined;
    void fetch(`http://127.0.0.1:${fwdPort}/blob`).then(async (r) => { got = Buffer.from(await r.arrayBuffer()); });
    await until("the forwarded download", () => got !== undefined, CMD_MS);
    assert.equal(createHash("sha256").update(got!).digest("hex"), inGuest, "2 MiB from the guest through the forward");
    const c = nat.counters;
    assert.ok(c.dhcpLeases >= 1 && c.dnsQueries >= 1 && c.tcpConnections >= 2 && c.forwardedConnections >= 1, JSON.stringify(c));
    assert.equal(c.malformed, 0, "the guest sent nothing malformed");
  } finally {
    await host.close();
    web.close();
    dns.close();
  }
});
