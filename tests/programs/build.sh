#!/usr/bin/env bash
# Build the Ringvisor bare-metal test programs and the benchmark.
#
#   tests/programs/build.sh [outdir]      (default: <repo>/build/programs)
#
# Every tests/programs/*.c and *.S is one program, linked with common/crt.S,
# common/lib.c and tests/common/testlib.c into <outdir>/<name>.elf.
# bench/programs/bench.c becomes bench.elf and bench-small.elf.  Only
# out-of-date outputs are rebuilt (dependencies come from gcc -MMD; the
# helpers are in tests/common/build-suite.sh).  Set CC to override the
# compiler.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/../common/build-suite.sh"
suite_setup "$here" "${1:-$here/../../build/programs}" rv64gc

compile "$common/crt.S" "$out/obj/common-crt.o"
compile "$common/lib.c" "$out/obj/common-lib.o"
compile "$shared/testlib.c" "$out/obj/common-testlib.o"
commons=("$out/obj/common-crt.o" "$out/obj/common-lib.o" "$out/obj/common-testlib.o")

build_each "${commons[@]}"

bench="$root/bench/programs/bench.c"
if [[ -f "$bench" ]]; then
    compile "$bench" "$out/obj/bench.o"
    link "$out/bench.elf" "$out/obj/bench.o" "${commons[@]}"
    compile "$bench" "$out/obj/bench-small.o" -DBENCH_SMALL=1
    link "$out/bench-small.elf" "$out/obj/bench-small.o" "${commons[@]}"
    n=$((n + 2))
fi
echo "build.sh: $n programs up to date in $out" >&2
