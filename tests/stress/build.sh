#!/usr/bin/env bash
# Build the stress guest kernels the host's system tests run (test/system/host.test.ts,
# sched.test.ts): S-mode kernels that spin, trap or call the firmware forever.
#
#   tests/stress/build.sh [outdir]      (default: <repo>/build/stress)
#
# Each tests/stress/*.c -> <outdir>/<name>.elf, linked exactly like a guest test kernel: with
# the runtime that tests/guests/build.sh compiles (common/start.S, common/lib.c,
# tests/common/testlib.c, into build/guests/obj) and tests/guests/common/link.ld, with the flags
# and incremental rules of tests/common/build-suite.sh.  They are not part of the equivalence
# suite: they never end by themselves, so there is no output to compare with QEMU's.
# Set CC to override the compiler.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
guests="$here/../../build/guests"
bash "$here/../guests/build.sh" "$guests"
source "$here/../common/build-suite.sh"
suite_setup "$here/../guests" "${1:-$here/../../build/stress}" rv64gc_zicsr_zifencei
guests="$(cd "$guests" && pwd)"

for src in "$here"/*.c; do
    name="$(basename "$src" .c)"
    compile "$src" "$out/obj/$name.o"
    link "$out/$name.elf" "$out/obj/$name.o" \
        "$guests/obj/common-start.o" "$guests/obj/common-lib.o" "$guests/obj/common-testlib.o"
    n=$((n + 1))
done
echo "build.sh: $n stress guest kernels up to date in $out" >&2
