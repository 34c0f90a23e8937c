// SBI remote fences (src/vmm/sbi.ts) and the request a running vCPU's holder serves
// (src/vmm/vcb.ts): remote_fence_i reaches every hart in the mask, in the RFENCE extension and
// through the legacy call, and a fence.i asked of a running vCPU is a FENCE_I request (the holder
// looks at its translation cache before it runs the vCPU on) that the asker waits for, not a TLB
// flush.
import { test } from "node:test";
import assert from "node:assert/strict";
import { EXT_RFENCE } from "../../src/vmm/sbi.js";
import { sbiOn } from "./sbi-fake.js";
import { Vcb, VCB_BYTES, FENCE_ALL, FENCE_I, KICK_LOOK } from "../../src/vmm/vcb.js";

const SUCCESS = 0n;

function setup(harts: number) {
  const fenceI: number[] = [];
  const sfence: number[] = [];
  let mask = 0n;
  const { call } = sbiOn(harts, {
    remoteSfence: (h) => { sfence.push(h); },
    remoteFenceI: (h) => { fenceI.push(h); },
    // The legacy calls pass the hart mask by address: every read returns `mask`.
    readGuest: (_pa, len) => {
      const b = new Uint8Array(len);
      new DataView(b.buffer).setBigUint64(0, mask, true);
      return b;
    },
  });
  return { call, fenceI, sfence, setMask: (m: bigint) => { mask = m; } };
}

test("remote_fence_i (RFENCE fid 0) reaches exactly the harts of the mask, and no sfence", () => {
  const { call, fenceI, sfence } = setup(4);
  // hart_mask 0b101 from base 1: harts 1 and 3
  assert.equal(call(0, EXT_RFENCE, 0n, 0b101n, 1n).error, SUCCESS);
  assert.deepEqual(fenceI, [1, 3]);
  assert.deepEqual(sfence, []);
  // base -1: every hart
  assert.equal(call(2, EXT_RFENCE, 0n, 0n, -1n & 0xffff_ffff_ffff_ffffn).error, SUCCESS);
  assert.deepEqual(fenceI, [1, 3, 0, 1, 2, 3]);
  // A hart outside the machine is an invalid parameter and fences nothing.
  assert.notEqual(call(0, EXT_RFENCE, 0n, 1n, 4n).error, SUCCESS);
  assert.equal(fenceI.length, 6);
  // remote_sfence_vma (fid 1) is the other request.
  assert.equal(call(0, EXT_RFENCE, 1n, 1n, 2n, 0n, 0n).error, SUCCESS);
  assert.deepEqual(sfence, [2]);
  assert.equal(fenceI.length, 6);
});

test("legacy remote_fence_i (extension 5) reaches the harts of the mask in guest memory", () => {
  const { call, fenceI, sfence, setMask } = setup(3);
  setMask(0b110n);
  const r = call(0, 5n, 0n, 0x8000_1000n);
  assert.equal(r.error, SUCCESS);
  assert.deepEqual(fenceI, [1, 2]);
  assert.deepEqual(sfence, []);
});

test("a fence.i asked of a running vCPU: a kick, a FENCE_I request (not a TLB flush), done when the holder takes it", async () => {
  const buf = new SharedArrayBuffer(VCB_BYTES);
  const vcb = new Vcb(buf, 0);
  let done = false;
  const asked = vcb.requestFence(FENCE_I).then(() => { done = true; });
  assert.equal(vcb.takeKick() & KICK_LOOK, KICK_LOOK, "the running vCPU is kicked");
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(done, false, "the asker waits for the holder");
  const f = vcb.takeFence();
  assert.equal(f, FENCE_I);
  assert.equal(f & FENCE_ALL, 0, "no TLB flush is asked for");
  await asked;
  assert.equal(done, true);
  // Both kinds at once: one take serves both askers.
  const a = vcb.requestFence(FENCE_ALL);
  const b = vcb.requestFence(FENCE_I);
  assert.equal(vcb.takeFence(), FENCE_ALL | FENCE_I);
  await Promise.all([a, b]);
  assert.equal(vcb.takeFence(), 0);
});
