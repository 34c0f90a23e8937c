#!/usr/bin/env bash
# Build the Ringvisor guest test kernels (the equivalence suite).
#
#   tests/guests/build.sh [outdir]      (default: <repo>/build/guests)
#
# Every tests/guests/*.c and *.S is one S-mode kernel, linked with
# common/start.S, common/lib.c and tests/common/testlib.c into
# <outdir>/<name>.elf (text and entry at 0x8020_0000).  Only out-of-date
# outputs are rebuilt (dependencies come from gcc -MMD; the helpers are in
# tests/common/build-suite.sh).  Set CC to override the compiler.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/../common/build-suite.sh"
suite_setup "$here" "${1:-$here/../../build/guests}" rv64gc_zicsr_zifencei

compile "$common/start.S" "$out/obj/common-start.o"
compile "$common/lib.c" "$out/obj/common-lib.o"
compile "$shared/testlib.c" "$out/obj/common-testlib.o"
commons=("$out/obj/common-start.o" "$out/obj/common-lib.o" "$out/obj/common-testlib.o")

build_each "${commons[@]}"
echo "build.sh: $n guest kernels up to date in $out" >&2
