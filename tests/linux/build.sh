#!/usr/bin/env bash
# Build the Linux user programs the system tests run inside the default guest: each
# tests/linux/*.c becomes a static glibc executable <outdir>/<name> (default build/linux),
# built with the cross gcc as a user would build one (-static -O2). Rebuilt when the source or
# this script is newer than the output. Set CC to override the compiler.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:-$here/../../build/linux}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
CC="${CC:-riscv64-linux-gnu-gcc}"
if ! command -v "$CC" >/dev/null 2>&1; then
    echo "build.sh: ERROR: RISC-V compiler '$CC' not found." >&2
    echo "build.sh: install it with: apt-get install gcc-riscv64-linux-gnu libc6-dev-riscv64-cross" >&2
    exit 1
fi

n=0
for src in "$here"/*.c; do
    bin="$out/$(basename "$src" .c)"
    if [[ ! -f "$bin" || "$src" -nt "$bin" || "${BASH_SOURCE[0]}" -nt "$bin" ]]; then
        echo "  CC    tests/linux/$(basename "$src")" >&2
        "$CC" -static -O2 -Wall -o "$bin" "$src"
    fi
    n=$((n + 1))
done
echo "build.sh: $n Linux programs up to date in $out" >&2
