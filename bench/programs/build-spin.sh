#!/usr/bin/env bash
# Build the CPU-bound guest kernel for bench/host.ts.
#
#   bench/programs/build-spin.sh [outdir]     (default: <repo>/build/bench/host)
#
# bench/programs/spin.c -> <outdir>/spin.elf, linked exactly like a guest test kernel (see
# build-exitcost.sh). Its own output directory: tests/common/build-suite.sh starts an output
# directory afresh whenever the build script using it changes, so two scripts sharing one would
# keep rebuilding each other's objects.  Set CC to override the compiler.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
guests="$here/../../build/guests"
bash "$here/../../tests/guests/build.sh" "$guests"
source "$here/../../tests/common/build-suite.sh"
suite_setup "$here/../../tests/guests" "${1:-$here/../../build/bench/host}" rv64gc_zicsr_zifencei
guests="$(cd "$guests" && pwd)"

compile "$here/spin.c" "$out/obj/spin.o"
link "$out/spin.elf" "$out/obj/spin.o" \
    "$guests/obj/common-start.o" "$guests/obj/common-lib.o" "$guests/obj/common-testlib.o"
echo "build-spin.sh: $out/spin.elf up to date" >&2
