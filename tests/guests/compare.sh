#!/usr/bin/env bash
# Build the guest kernels, run each in Ringvisor (--virt MODE, default native)
# and under QEMU, and show where their console output differs.
#
#   tests/guests/compare.sh [--virt MODE] [name...]     (default: every kernel)
#
# Outputs go to build/guests/out/<name>.<mode|qemu>.  Needs node, a built
# Ringvisor (npm run build) and qemu-system-riscv64 (Debian: qemu-system-misc).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
mode=native
if [[ "${1:-}" == "--virt" ]]; then mode="$2"; shift 2; fi
out="$root/build/guests"
"$here/build.sh" "$out"
mkdir -p "$out/out"

mapfile -t names < <(node -e 'for (const k of require(process.argv[1]).kernels) console.log(k.name)' "$here/manifest.json")
(( $# )) && names=("$@")
mapfile -t qemu < <(node -e 'for (const a of require(process.argv[1]).qemu) console.log(a)' "$here/manifest.json")
mapfile -t rv < <(node -e 'for (const a of require(process.argv[1]).ringvisor) console.log(a)' "$here/manifest.json")

# From the kernel's start line on, with CR LF as LF (see manifest.json).
strip() { sed -n '/^== guest /,$p' | tr -d '\r'; }

bad=0
for n in "${names[@]}"; do
    elf="$out/$n.elf"
    args=()
    for a in "${rv[@]}"; do args+=("${a//\{elf\}/$elf}"); done
    set +e
    timeout 120 node "$root/dist/src/cli/main.js" "${args[@]}" --virt "$mode" < /dev/null 2>/dev/null | strip > "$out/out/$n.$mode"
    set -e
    if command -v "${qemu[0]}" >/dev/null; then
        raw="$out/out/$n.qemu.raw"
        : > "$raw"
        cmd=()
        for a in "${qemu[@]}"; do a="${a//\{elf\}/$elf}"; cmd+=("${a//\{out\}/$raw}"); done
        mapfile -t extra < <(node -e 'for (const k of require(process.argv[1]).kernels) if (k.name === process.argv[2]) for (const a of k.qemuArgs ?? []) console.log(a)' "$here/manifest.json" "$n")
        cmd+=("${extra[@]}")
        timeout 120 "${cmd[@]}" < /dev/null > /dev/null 2>&1 || true
        strip < "$raw" > "$out/out/$n.qemu"
        if diff -u "$out/out/$n.qemu" "$out/out/$n.$mode"; then
            echo "$n: same output ($(tail -n1 "$out/out/$n.$mode"))"
        else
            echo "$n: OUTPUT DIFFERS (--- QEMU, +++ Ringvisor --virt $mode)"
            bad=1
        fi
    else
        echo "$n: $(tail -n1 "$out/out/$n.$mode") (QEMU not installed)"
    fi
done
exit $bad
