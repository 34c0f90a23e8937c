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
npx tsc -p tsconfig.json
