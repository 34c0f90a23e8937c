// The translation cache of one wasm instance (one physical CPU's thread): it translates hot code
// when run() asks (the `jit.translate` import), installs each region's function in the
// instance's function table and its blocks in the instance's map (src/hart/asm/jit.ts), and
// drops translations whose code may have changed.
//
// Keys are machine addresses. Translated code reads the virtual pc from its caller and the TLB
// from the hart, so one translation serves every address space, privilege and vCPU that runs
// the same machine frame; a change of page tables, satp or sfence.vma needs nothing here.
//
// What changes code is a store into its frame (by any hart on any thread, or the host). Each
// frame has a byte in the machine's code map: CODE_TRANSLATED once some translator translated
// code in it, CODE_WRITTEN added by the first store after that (which also sets the machine's
// code flag). A translator that finds a frame written clears the mark (atomically) and bumps the
// frame's generation; a translation records the generation it was made at and is dropped once
// that has moved on. Translations are checked on fence.i, which is when RISC-V requires
// instruction fetch to see earlier stores (unprivileged spec 3.2): the hart's own fence.i checks
// at once, and each thread checks before it runs a hart, so a remote fence.i (which reaches a
// running vCPU as a kick) is seen too. A check costs two loads unless translated code was written.
//
// Ownership: everything in this object, the instance's map, hotness table and function table
// belong to the thread that made it. The code map, generations, flag and generation epoch are
// shared (atomics only). A store racing with the translation of its frame (issued on another
// thread before the frame was marked translated, visible only after the translator read the
// page) is missed; the guest's own fence.i would not order it either without a fence on the
// storing hart, which Linux always issues (flush_icache_all) before a remote fence.i.
import { writeFileSync } from "node:fs";
import * as L from "../layout.js";
import { Bytes, encodeModule, Op, T_I32, T_I64, type ModuleSpec } from "./wasm.js";
import { CHAIN_PARAMS, CHAIN_RESULTS, emitChainLookup, emitMulhu, emitRegion, findRegion, FN_PARAMS, FN_RESULTS, type CodeEnv, type Region } from "./codegen.js";

export interface JitExports {
  table: WebAssembly.Table;
  jitSetup(map: number, hot: number, dirty: number, flag: number): void;
  jitSetHotness(threshold: number, tick: number): void;
  jitLoad: (...a: never[]) => unknown;
  jitStore: (...a: never[]) => unknown;
  jitFp: (...a: never[]) => unknown;
  jitAddD: (...a: never[]) => unknown;
  jitMulD: (...a: never[]) => unknown;
  jitFmaD: (...a: never[]) => unknown;
  btSys: (...a: never[]) => unknown; // src/vmm/asm/vcpu.ts: a sensitive instruction under --virt bt
}

export interface JitOptions {
  maxTranslations?: number; // the cache's bound: the oldest are evicted beyond it
  maxCodeBytes?: number;
  eager?: boolean; // translate code the first time it runs (--jit eager), not once it is hot
  threshold?: number; // samples before code is translated (JIT_HOT_THRESHOLD); tests lower it
}

export interface JitStats {
  translations: number; // made
  modules: number; // compiled (a batch of translations each)
  live: number;
  failed: number; // hot code that starts with something the translator leaves to the interpreter
  blocks: number;
  guestInsns: number; // instructions in the regions made
  wasmBytes: number; // of the modules made
  liveBytes: number;
  maxLiveBytes: number; // the cache's bound on liveBytes (the oldest are evicted beyond it)
  translateMs: number; // time spent translating, compiling and installing
  evicted: number;
  invalidated: number; // dropped because their frame was written
  fenceI: number;
  checks: number; // revalidations (own fence.i or another thread's)
  compileErrors: number; // modules V8 refused (a translator bug; that code stays interpreted)
}

interface Translation {
  frame: number;
  gen: number;
  index: number; // in the function table
  keys: number[]; // machine addresses of its blocks in the map
  bytes: number;
  owner: number; // the VM whose vCPU was running when it was made
  fn: unknown;
  stub?: boolean; // marks an address whose first instruction the interpreter must run
}

const DEFAULT_MAX_TRANSLATIONS = 65536;
const BATCH = 64; // regions per module at most
const DEFAULT_MAX_CODE_BYTES = 96 << 20;
const CODE_TRANSLATED = 1; // the code map's bits (src/hart/asm/jit.ts)
const CODE_WRITTEN = 2;

// The module of a batch of regions: mulhu and the chain lookup first, then one exported function f<i> per region,
// importing the hart's slow paths (codegen.ts F_*).
export function translationModule(regions: Region[], track: CodeEnv): Uint8Array {
  const funcs: ModuleSpec["funcs"] = [
    { type: 1, locals: [{ count: 3, type: T_I64 }], body: emitMulhu() },
    { type: 7, locals: [{ count: 2, type: T_I32 }], body: emitChainLookup(track) },
  ];
  regions.forEach((r, i) => {
    const fn = emitRegion(r, track);
    funcs.push({ type: 0, locals: fn.locals, body: fn.body, export: `f${i}` });
  });
  const t = (params: number[], results: number[]): { params: number[]; results: number[] } => ({ params, results });
  return encodeModule({
    types: [t(FN_PARAMS, FN_RESULTS), t([T_I64, T_I64], [T_I64]), t([T_I64, T_I32], [T_I64]), t([T_I64, T_I64, T_I32], [T_I32]),
      t([T_I32], [T_I32]), t([T_I64, T_I64, T_I64], [T_I64]), t([T_I32, T_I64], [T_I32]), t(CHAIN_PARAMS, CHAIN_RESULTS)],
    memory: { module: "env", name: "memory", maxPages: 65536 },
    funcImports: [{ module: "hart", name: "load", type: 2 }, { module: "hart", name: "store", type: 3 }, { module: "hart", name: "fp", type: 4 },
      { module: "hart", name: "addD", type: 1 }, { module: "hart", name: "mulD", type: 1 }, { module: "hart", name: "fmaD", type: 5 },
      { module: "hart", name: "sys", type: 6 }],
    funcs,
  });
}

export const JIT_REGION_BYTES = L.JIT_MAP_ENTRIES * L.JIT_MAP_ENTRY_BYTES + L.JIT_HOT_ENTRIES * L.JIT_HOT_ENTRY_BYTES;

export class Jit {
  readonly stats: JitStats = {
    translations: 0, modules: 0, live: 0, failed: 0, blocks: 0, guestInsns: 0, wasmBytes: 0, liveBytes: 0, maxLiveBytes: 0, translateMs: 0,
    evicted: 0, invalidated: 0, fenceI: 0, checks: 0, compileErrors: 0,
  };
  lastError = "";
  // Set by the thread before it runs a vCPU: the VM (the host's number for it) that translations
  // made now are counted to. Translations serve any VM that runs the same frames; this counts who
  // caused them.
  owner = 0;
  private readonly ownerBytes = new Map<number, number>();
  private readonly byFrame = new Map<number, Translation[]>();
  private readonly order = new Set<Translation>(); // oldest first (eviction)
  private readonly freeSlots: number[] = [];
  private validGenEpoch: number;
  private readonly maxTranslations: number;
  private readonly maxCodeBytes: number;
  private readonly imports: WebAssembly.Imports;
  private readonly mapBase: number;
  private readonly hotBase: number;
  // A function that retires nothing: the map sends addresses that start with an instruction the
  // translator leaves to the interpreter here, so that they are not counted and retried.
  private readonly stubIndex: number;
  private readonly threshold: number;

  // `region`: JIT_REGION_BYTES of machine memory this thread owns (map, then hotness table).
  constructor(
    private readonly memory: WebAssembly.Memory,
    private readonly wasm: JitExports,
    private readonly track: { flag: number; genEpoch: number; gen: number; dirty: number },
    region: number,
    opts: JitOptions = {},
  ) {
    this.mapBase = region;
    this.hotBase = region + L.JIT_MAP_ENTRIES * L.JIT_MAP_ENTRY_BYTES;
    this.maxTranslations = opts.maxTranslations ?? DEFAULT_MAX_TRANSLATIONS;
    this.maxCodeBytes = opts.maxCodeBytes ?? DEFAULT_MAX_CODE_BYTES;
    this.stats.maxLiveBytes = this.maxCodeBytes;
    new Uint8Array(this.buffer(), region, JIT_REGION_BYTES).fill(0);
    this.imports = { env: { memory }, hart: { load: wasm.jitLoad, store: wasm.jitStore, fp: wasm.jitFp, addD: wasm.jitAddD, mulD: wasm.jitMulD, fmaD: wasm.jitFmaD, sys: wasm.btSys } };
    this.validGenEpoch = Atomics.load(this.u32(), track.genEpoch / 4);
    wasm.jitSetup(this.mapBase, this.hotBase, track.dirty, track.flag);
    this.threshold = opts.eager ? 1 : opts.threshold ?? L.JIT_HOT_THRESHOLD;
    wasm.jitSetHotness(this.threshold, opts.eager ? 1 : L.JIT_TICK);
    const stub = new WebAssembly.Instance(new WebAssembly.Module(encodeModule({
      types: [{ params: FN_PARAMS, results: FN_RESULTS }],
      funcImports: [],
      funcs: [{ type: 0, locals: [], body: new Bytes().byte(Op.local_get).u32(7), export: "f" }], // returns n
    }) as Uint8Array<ArrayBuffer>));
    this.stubIndex = wasm.table.grow(1);
    wasm.table.set(this.stubIndex, stub.exports.f as never);
  }

  // The imports the hart's instance needs, bound to a Jit made later (the Jit needs the instance).
  static imports(get: () => Jit | undefined): { translate(h: number): void; fenceI(): void } {
    return {
      translate: (h: number) => get()?.translate(h >>> 0),
      fenceI: () => get()?.fenceI(),
    };
  }

  private buffer(): SharedArrayBuffer {
    return this.memory.buffer as unknown as SharedArrayBuffer;
  }

  private u32(): Uint32Array {
    return new Uint32Array(this.buffer());
  }

  // Called by run() through the import: translate the region that starts at machine address h,
  // and with it other code that is nearly hot (one module for all: compiling and instantiating
  // a module costs far more than a function in it; see docs/binary-translation.md).
  translate(h: number): void {
    const t0 = performance.now();
    const work: { h: number; frame: number; gen: number; region: Region }[] = [];
    const pending = new Set<number>(); // blocks of this batch's regions
    const map = this.u32();
    const known = (a: number): boolean => pending.has(a) || map[this.slot(a) / 4] === a;
    for (const c of [h, ...this.warm(h)]) {
      if (known(c)) continue;
      const frame = c >>> 12;
      Atomics.or(this.codeBytes(), frame, CODE_TRANSLATED); // before the page is read
      const gen = this.consume(frame);
      this.dropStale(frame, gen);
      const base = frame * 4096;
      const region = findRegion(new Uint8Array(this.buffer(), base, 4096), c & 0xfff, (off) => known(base + off));
      this.setHot(c, 0);
      if (!region) {
        this.stats.failed++;
        this.addStub(c, frame, gen);
        continue;
      }
      for (const b of region.blocks) pending.add(base + b.off);
      work.push({ h: c, frame, gen, region });
    }
    if (work.length > 0) this.install(work);
    this.stats.translateMs += performance.now() - t0;
  }

  // Hot-table entries halfway to the threshold whose code is not translated yet.
  private warm(h: number): number[] {
    const v = new DataView(this.buffer(), this.hotBase, L.JIT_HOT_ENTRIES * L.JIT_HOT_ENTRY_BYTES);
    const map = this.u32();
    const out: number[] = [];
    for (let i = 0; i < L.JIT_HOT_ENTRIES && out.length < BATCH - 1; i++) {
      const key = v.getUint32(i * L.JIT_HOT_ENTRY_BYTES, true);
      const count = v.getInt32(i * L.JIT_HOT_ENTRY_BYTES + 4, true);
      if (key === 0 || key === h || count < this.threshold / 2) continue;
      if (map[this.slot(key) / 4] === key) continue;
      out.push(key);
    }
    return out;
  }

  private install(work: { h: number; frame: number; gen: number; region: Region }[]): void {
    for (const w of work) w.region.base = w.frame * 4096;
    const bytes = translationModule(work.map((w) => w.region), { dirty: this.track.dirty, flag: this.track.flag, map: this.mapBase, stub: this.stubIndex });
    let inst: WebAssembly.Instance;
    try {
      inst = new WebAssembly.Instance(new WebAssembly.Module(bytes as Uint8Array<ArrayBuffer>), this.imports);
    } catch (e) {
      // A translator bug must not take the guest down: the interpreter runs this code instead.
      this.stats.compileErrors++;
      this.lastError = `${(e as Error).message} (regions at ${work.map((w) => `0x${w.h.toString(16)}`).join(", ")})`;
      if (process.env.RINGVISOR_JIT_DUMP) writeFileSync(`${process.env.RINGVISOR_JIT_DUMP}/jit-${work[0]!.h.toString(16)}.wasm`, bytes);
      for (const w of work) this.addStub(w.h, w.frame, w.gen);
      return;
    }
    const s = this.stats;
    s.wasmBytes += bytes.length;
    const share = Math.ceil(bytes.length / work.length);
    const made: Translation[] = [];
    work.forEach((w, i) => {
      const f = inst.exports[`f${i}`] as unknown;
      const table = this.wasm.table;
      const index = this.freeSlots.pop() ?? table.grow(1);
      table.set(index, f as never);
      const t: Translation = { frame: w.frame, gen: w.gen, index, keys: [], bytes: share, owner: this.owner, fn: f };
      this.ownerBytes.set(this.owner, (this.ownerBytes.get(this.owner) ?? 0) + share);
      const map = this.u32();
      w.region.blocks.forEach((b, j) => {
        const key = (w.frame * 4096 + b.off) >>> 0;
        const at = this.slot(key) / 4;
        map[at] = key;
        map[at + 1] = index;
        map[at + 2] = j;
        t.keys.push(key);
      });
      const list = this.byFrame.get(w.frame);
      if (list) list.push(t);
      else this.byFrame.set(w.frame, [t]);
      this.order.add(t);
      made.push(t);
      s.translations++;
      s.live++;
      s.blocks += w.region.blocks.length;
      s.guestInsns += w.region.blocks.reduce((n, b) => n + b.insns.length, 0);
      s.liveBytes += share;
    });
    s.modules++;
    for (const t of this.order) {
      if ((s.live <= this.maxTranslations && s.liveBytes <= this.maxCodeBytes) || made.includes(t)) break;
      if (this.drop(t)) s.evicted++;
    }
  }

  // Bytes of live translations made while running a vCPU of `owner`.
  liveBytesOf(owner: number): number {
    return this.ownerBytes.get(owner) ?? 0;
  }

  // The hart executed fence.i.
  fenceI(): void {
    this.stats.fenceI++;
    this.check();
  }

  // Before running a hart, and on fence.i: drop translations whose frames were written since.
  check(): void {
    const u32 = this.u32();
    if (Atomics.load(u32, this.track.flag / 4) === 0 && Atomics.load(u32, this.track.genEpoch / 4) === this.validGenEpoch) return;
    this.stats.checks++;
    // Both before the scan: a store or another thread's find during it makes the next check scan.
    Atomics.store(u32, this.track.flag / 4, 0);
    const genEpoch = Atomics.load(u32, this.track.genEpoch / 4);
    for (const frame of [...this.byFrame.keys()]) this.dropStale(frame, this.consume(frame));
    this.validGenEpoch = genEpoch;
  }

  private codeBytes(): Uint8Array {
    return new Uint8Array(this.buffer(), this.track.dirty);
  }

  // The frame's generation, counting a store seen since the last look as a change.
  private consume(frame: number): number {
    const gens = new Uint32Array(this.buffer(), this.track.gen);
    if ((Atomics.and(this.codeBytes(), frame, ~CODE_WRITTEN) & CODE_WRITTEN) !== 0) {
      Atomics.add(this.u32(), this.track.genEpoch / 4, 1);
      return Atomics.add(gens, frame, 1) + 1;
    }
    return Atomics.load(gens, frame);
  }

  private dropStale(frame: number, gen: number): void {
    const list = this.byFrame.get(frame);
    if (!list) return;
    for (const t of [...list]) {
      if (t.gen !== gen && this.drop(t)) this.stats.invalidated++;
    }
  }

  private drop(t: Translation): boolean {
    const list = this.byFrame.get(t.frame);
    const i = list?.indexOf(t) ?? -1;
    if (i < 0) return false;
    list!.splice(i, 1);
    if (list!.length === 0) this.byFrame.delete(t.frame);
    const map = this.u32();
    for (const key of t.keys) {
      const at = this.slot(key) / 4;
      if (map[at] === key && map[at + 1] === t.index) map[at] = 0;
    }
    if (t.stub) return false;
    this.order.delete(t);
    this.wasm.table.set(t.index, null as never);
    this.freeSlots.push(t.index);
    this.stats.live--;
    this.stats.liveBytes -= t.bytes;
    const left = (this.ownerBytes.get(t.owner) ?? 0) - t.bytes;
    if (left > 0) this.ownerBytes.set(t.owner, left);
    else this.ownerBytes.delete(t.owner);
    return true;
  }

  // Maps h to the stub, dropped with the frame's translations when the frame is written.
  private addStub(h: number, frame: number, gen: number): void {
    const t: Translation = { frame, gen, index: this.stubIndex, keys: [h], bytes: 0, owner: this.owner, fn: undefined, stub: true };
    const map = this.u32();
    const at = this.slot(h) / 4;
    map[at] = h;
    map[at + 1] = this.stubIndex;
    map[at + 2] = 0;
    const list = this.byFrame.get(frame);
    if (list) list.push(t);
    else this.byFrame.set(frame, [t]);
  }

  private slot(h: number): number {
    return this.mapBase + (((h >>> 1) ^ (h >>> 19)) & (L.JIT_MAP_ENTRIES - 1)) * L.JIT_MAP_ENTRY_BYTES;
  }

  private setHot(h: number, count: number): void {
    const e = this.hotBase + (((h >>> 1) ^ (h >>> 15)) & (L.JIT_HOT_ENTRIES - 1)) * L.JIT_HOT_ENTRY_BYTES;
    const v = new DataView(this.buffer());
    v.setUint32(e, h >>> 0, true);
    v.setInt32(e + 4, count, true);
  }
}
