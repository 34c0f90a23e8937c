#!/usr/bin/env bash
# Build the Ringvisor bare-metal test programs and the benchmark.
#
#   tests/programs/build.sh [outdir]      (default: <repo>/build/programs)
#
# Every tests/programs/*.c and *.S is one program, linked with common/crt.S
# and common/lib.c into <outdir>/<name>.elf.  bench/programs/bench.c becomes
# bench.elf and bench-small.elf.  Only out-of-date outputs are rebuilt
# (dependencies come from gcc -MMD).  Set CC to override the compiler.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="${1:-$root/build/programs}"
mkdir -p "$out/obj"
out="$(cd "$out" && pwd)"

CC="${CC:-riscv64-linux-gnu-gcc}"
if ! command -v "$CC" >/dev/null 2>&1; then
    echo "build.sh: ERROR: RISC-V compiler '$CC' not found." >&2
    echo "build.sh: install it with: apt-get install gcc-riscv64-linux-gnu" >&2
    exit 1
fi

common="$here/common"
FLAGS=(-march=rv64gc -mabi=lp64d -mcmodel=medany -nostdlib -nostartfiles
       -ffreestanding -static -O2 -fno-pie -no-pie -mno-relax
       -fno-asynchronous-unwind-tables -fno-unwind-tables
       -Wall -Wno-unused-function -I "$common")
LDFLAGS=(-T "$common/link.ld" -Wl,--no-warn-rwx-segments -Wl,--build-id=none)

# Rebuild everything when the flags, the compiler or this script change.
stamp="$out/obj/.flags"
flags_now="$("$CC" --version | head -n1) ${FLAGS[*]} ${LDFLAGS[*]} $(cksum < "${BASH_SOURCE[0]}")"
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$flags_now" ]]; then
    rm -f "$out"/obj/*.o "$out"/obj/*.d
    printf '%s' "$flags_now" > "$stamp"
fi

# up_to_date TARGET DEPFILE [EXTRA...]: true when TARGET exists and is newer
# than every file listed in DEPFILE (gcc -MMD format) and every EXTRA file.
up_to_date() {
    local target="$1" dep="$2"; shift 2
    [[ -f "$target" && -f "$dep" ]] || return 1
    local f
    for f in $(sed -e 's/\\$//' -e 's/^[^:]*://' "$dep") "$@"; do
        [[ -e "$f" ]] || return 1
        [[ "$f" -nt "$target" ]] && return 1
    done
    return 0
}

# compile SRC OBJ [extra flags...]
compile() {
    local src="$1" obj="$2"; shift 2
    local dep="${obj%.o}.d"
    if ! up_to_date "$obj" "$dep"; then
        echo "  CC    ${src#"$root"/}" >&2
        "$CC" "${FLAGS[@]}" "$@" -MMD -MF "$dep" -c "$src" -o "$obj"
    fi
}

# link ELF OBJS...
link() {
    local elf="$1"; shift
    local need=0 o
    [[ -f "$elf" ]] || need=1
    for o in "$@" "$common/link.ld"; do
        [[ "$o" -nt "$elf" ]] && need=1
    done
    if (( need )); then
        echo "  LD    ${elf#"$root"/}" >&2
        "$CC" "${FLAGS[@]}" "${LDFLAGS[@]}" "$@" -o "$elf"
    fi
}

compile "$common/crt.S" "$out/obj/common-crt.o"
compile "$common/lib.c" "$out/obj/common-lib.o"
commons=("$out/obj/common-crt.o" "$out/obj/common-lib.o")

shopt -s nullglob
n=0
for src in "$here"/*.c "$here"/*.S; do
    name="$(basename "$src")"
    name="${name%.*}"
    compile "$src" "$out/obj/$name.o"
    link "$out/$name.elf" "$out/obj/$name.o" "${commons[@]}"
    n=$((n + 1))
done

bench="$root/bench/programs/bench.c"
if [[ -f "$bench" ]]; then
    compile "$bench" "$out/obj/bench.o"
    link "$out/bench.elf" "$out/obj/bench.o" "${commons[@]}"
    compile "$bench" "$out/obj/bench-small.o" -DBENCH_SMALL=1
    link "$out/bench-small.elf" "$out/obj/bench-small.o" "${commons[@]}"
    n=$((n + 2))
fi
echo "build.sh: $n programs up to date in $out" >&2
