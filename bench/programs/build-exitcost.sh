#!/usr/bin/env bash
# Build the exit-cost guest kernel for bench/virt.ts.
#
#   bench/programs/build-exitcost.sh [outdir]     (default: <repo>/build/bench)
#
# bench/programs/exitcost.c -> <outdir>/exitcost.elf, linked exactly like a guest test kernel:
# with the runtime that tests/guests/build.sh compiles (common/start.S, common/lib.c,
# tests/common/testlib.c, into build/guests/obj) and tests/guests/common/link.ld, with the
# flags and incremental rules of tests/common/build-suite.sh.  Set CC to override the compiler.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
guests="$here/../../build/guests"
bash "$here/../../tests/guests/build.sh" "$guests"
source "$here/../../tests/common/build-suite.sh"
suite_setup "$here/../../tests/guests" "${1:-$here/../../build/bench}" rv64gc_zicsr_zifencei
guests="$(cd "$guests" && pwd)"

compile "$here/exitcost.c" "$out/obj/exitcost.o"
link "$out/exitcost.elf" "$out/obj/exitcost.o" \
    "$guests/obj/common-start.o" "$guests/obj/common-lib.o" "$guests/obj/common-testlib.o"
echo "build-exitcost.sh: $out/exitcost.elf up to date" >&2
