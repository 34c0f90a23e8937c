#!/usr/bin/env bash
# Builds what changed: the wasm hart (AssemblyScript) when its sources (the asm folders and the
# layouts they import) are newer than build/hart.wasm, and the TypeScript incrementally (tsc
# keeps dist/.tsbuildinfo).
set -euo pipefail
cd "$(dirname "$0")/.."

wasm=build/hart.wasm
if [ ! -f "$wasm" ] || [ -n "$(find src/hart/asm src/vmm/asm src/hart/layout.ts src/vmm/layout.ts asconfig.json package-lock.json -newer "$wasm" -print -quit)" ]; then
  echo "build: wasm hart" >&2
  npx asc src/vmm/asm/index.ts --config asconfig.json --target release
fi
# The guest agent (guest/rv-agent.c), which the default guest image carries; without the cross
# compiler the image is built without it (setup installs the compiler).
agent=build/guest/rv-agent
if command -v riscv64-linux-gnu-gcc >/dev/null && { [ ! -f "$agent" ] || [ guest/rv-agent.c -nt "$agent" ]; }; then
  echo "build: guest agent" >&2
  mkdir -p build/guest
  riscv64-linux-gnu-gcc -static -O2 -Wall -Wextra -o "$agent" guest/rv-agent.c
fi
npx tsc -p tsconfig.json
