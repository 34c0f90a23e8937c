// /bin/rv-marker: the smallest static RISC-V Linux program that executes the marker instruction
// and exits 0. The hypervisor counts the marker, so a benchmark can tell when the guest's
// userspace has really run. ELF64 per the System V gABI, e_machine/flags per the RISC-V psABI.

// `slti x0, x0, 0x7a5`: writes x0, so architecturally a no-op; no compiler emits it.
export const MARKER_INSN = 0x7a502013;

const OP_IMM = 0x13; // RV64I base opcode for register-immediate ALU ops
const SYSTEM = 0x73;
const A0 = 10;
const A7 = 17;
const SYS_EXIT = 93; // Linux asm-generic unistd.h

// I-type: imm[11:0] | rs1 | funct3 | rd | opcode (unprivileged spec, 2.3).
function iType(imm: number, rs1: number, funct3: number, rd: number, opcode: number): number {
  return (((imm & 0xfff) << 20) | (rs1 << 15) | (funct3 << 12) | (rd << 7) | opcode) >>> 0;
}

export const MARKER_CODE: readonly number[] = [
  iType(0x7a5, 0, 0b010, 0, OP_IMM), // slti  x0, x0, 0x7a5   (0x7a502013, the marker)
  iType(SYS_EXIT, 0, 0b000, A7, OP_IMM), // addi  a7, zero, 93    (li a7, 93: exit)
  iType(0, 0, 0b000, A0, OP_IMM), // addi  a0, zero, 0     (li a0, 0: status)
  iType(0, 0, 0b000, 0, SYSTEM), // ecall
];

const BASE = 0x10000n; // above the default vm.mmap_min_addr
const EHDR = 64;
const PHDR = 56;
const SHDR = 64;
const EM_RISCV = 243;

// Layout: ELF header, one PT_LOAD program header covering the whole file (R+X), the code, then a
// .shstrtab and three section headers (null, .text, .shstrtab) so objdump -d and gdb can read it.
export function markerElf(): Uint8Array {
  const codeOff = EHDR + PHDR;
  const code = MARKER_CODE.length * 4;
  const strtab = "\0.text\0.shstrtab\0";
  const strOff = codeOff + code;
  const shOff = (strOff + strtab.length + 7) & ~7;
  const size = shOff + 3 * SHDR;
  const buf = new Uint8Array(size);
  const dv = new DataView(buf.buffer);
  const entry = BASE + BigInt(codeOff);

  buf.set([0x7f, 0x45, 0x4c, 0x46, 2 /* ELFCLASS64 */, 1 /* little-endian */, 1 /* EV_CURRENT */, 0 /* SYSV ABI */]);
  dv.setUint16(16, 2, true); // e_type ET_EXEC
  dv.setUint16(18, EM_RISCV, true);
  dv.setUint32(20, 1, true); // e_version
  dv.setBigUint64(24, entry, true); // e_entry
  dv.setBigUint64(32, BigInt(EHDR), true); // e_phoff
  dv.setBigUint64(40, BigInt(shOff), true); // e_shoff
  dv.setUint32(48, 0, true); // e_flags: no RVC, soft-float ABI (the code uses neither)
  dv.setUint16(52, EHDR, true);
  dv.setUint16(54, PHDR, true);
  dv.setUint16(56, 1, true); // e_phnum
  dv.setUint16(58, SHDR, true);
  dv.setUint16(60, 3, true); // e_shnum
  dv.setUint16(62, 2, true); // e_shstrndx

  dv.setUint32(EHDR + 0, 1, true); // p_type PT_LOAD
  dv.setUint32(EHDR + 4, 5, true); // p_flags PF_R | PF_X
  dv.setBigUint64(EHDR + 8, 0n, true); // p_offset
  dv.setBigUint64(EHDR + 16, BASE, true); // p_vaddr
  dv.setBigUint64(EHDR + 24, BASE, true); // p_paddr
  dv.setBigUint64(EHDR + 32, BigInt(size), true); // p_filesz
  dv.setBigUint64(EHDR + 40, BigInt(size), true); // p_memsz
  dv.setBigUint64(EHDR + 48, 0x1000n, true); // p_align

  MARKER_CODE.forEach((w, i) => dv.setUint32(codeOff + 4 * i, w, true));
  buf.set(Buffer.from(strtab, "latin1"), strOff);

  const section = (i: number, name: number, type: number, flags: bigint, addr: bigint, off: number, sz: number, align: number): void => {
    const o = shOff + i * SHDR;
    dv.setUint32(o, name, true);
    dv.setUint32(o + 4, type, true);
    dv.setBigUint64(o + 8, flags, true);
    dv.setBigUint64(o + 16, addr, true);
    dv.setBigUint64(o + 24, BigInt(off), true);
    dv.setBigUint64(o + 32, BigInt(sz), true);
    dv.setBigUint64(o + 48, BigInt(align), true);
  };
  section(1, 1, 1 /* SHT_PROGBITS */, 6n /* SHF_ALLOC | SHF_EXECINSTR */, entry, codeOff, code, 4);
  section(2, 7, 3 /* SHT_STRTAB */, 0n, 0n, strOff, strtab.length, 1);
  return buf;
}
