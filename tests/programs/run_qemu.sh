#!/usr/bin/env bash
# Build the test programs and run each under QEMU with the command recorded
# in manifest.json ("qemu"), checking QEMU's exit code against "qemuExit".
# QEMU's console output is saved to <outdir>/qemu/<name>.out: for programs
# with "reference": true this is the output the hart must reproduce byte for
# byte.
#
#   tests/programs/run_qemu.sh [outdir]        (default: <repo>/build/programs)
#
# Needs qemu-system-riscv64 (Debian: qemu-system-misc, 7.2) and node.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="${1:-$root/build/programs}"
"$here/build.sh" "$out"
out="$(cd "$out" && pwd)"
mkdir -p "$out/qemu"

command -v qemu-system-riscv64 >/dev/null || { echo "run_qemu.sh: qemu-system-riscv64 not found" >&2; exit 1; }
command -v node >/dev/null || { echo "run_qemu.sh: node not found" >&2; exit 1; }

# one line per program: name <TAB> elf <TAB> qemuExit; then the argv line
mapfile -t rows < <(node -e '
  const m = require(process.argv[1]);
  for (const p of m.programs) console.log([p.name, p.elf, p.qemuExit ?? 0].join("\t"));
' "$here/manifest.json")
mapfile -t argv < <(node -e '
  for (const a of require(process.argv[1]).qemu) console.log(a);
' "$here/manifest.json")

bad=0
for row in "${rows[@]}"; do
    IFS=$'\t' read -r name elf want <<< "$row"
    cmd=()
    for a in "${argv[@]}"; do cmd+=("${a//\{elf\}/$out/$elf}"); done
    set +e
    timeout 120 "${cmd[@]}" > "$out/qemu/$name.out" 2>&1 < /dev/null
    rc=$?
    set -e
    last="$(tail -n 1 "$out/qemu/$name.out")"
    if [[ "$rc" == "$want" ]]; then
        printf '  ok    %-12s exit %-3s %s\n' "$name" "$rc" "$last"
    else
        printf '  BAD   %-12s exit %-3s (expected %s) %s\n' "$name" "$rc" "$want" "$last"
        bad=$((bad + 1))
    fi
done
if (( bad )); then
    echo "run_qemu.sh: $bad program(s) did not behave as expected under QEMU" >&2
    exit 1
fi
echo "run_qemu.sh: all programs behaved as expected; outputs in $out/qemu" >&2
