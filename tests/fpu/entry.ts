// Standalone entry so the FPU can be compiled to its own wasm module for tests.
export * from "../../src/hart/asm/fpu";
