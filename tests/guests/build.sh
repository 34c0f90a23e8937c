#!/usr/bin/env bash
# Build the Ringvisor guest test kernels (the equivalence suite).
#
#   tests/guests/build.sh [outdir]      (default: <repo>/build/guests)
#
# Every tests/guests/*.c and *.S is one S-mode kernel, linked with
# common/start.S and common/lib.c into <outdir>/<name>.elf (text and entry
# at 0x8020_0000).  Only out-of-date outputs are rebuilt (dependencies come
# from gcc -MMD).  Set CC to override the compiler.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="${1:-$root/build/guests}"
mkdir -p "$out/obj"
out="$(cd "$out" && pwd)"

CC="${CC:-riscv64-linux-gnu-gcc}"
if ! command -v "$CC" >/dev/null 2>&1; then
    echo "build.sh: ERROR: RISC-V compiler '$CC' not found." >&2
    echo "build.sh: install it with: apt-get install gcc-riscv64-linux-gnu" >&2
    exit 1
fi

common="$here/common"
FLAGS=(-march=rv64gc_zicsr_zifencei -mabi=lp64d -mcmodel=medany -nostdlib -nostartfiles
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

# up_to_date TARGET DEPFILE: true when TARGET exists and is newer than every
# file listed in DEPFILE (gcc -MMD format).
up_to_date() {
    local target="$1" dep="$2"
    [[ -f "$target" && -f "$dep" ]] || return 1
    local f
    for f in $(sed -e 's/\\$//' -e 's/^[^:]*://' "$dep"); do
        [[ -e "$f" ]] || return 1
        [[ "$f" -nt "$target" ]] && return 1
    done
    return 0
}

# compile SRC OBJ
compile() {
    local src="$1" obj="$2"
    local dep="${obj%.o}.d"
    if ! up_to_date "$obj" "$dep"; then
        echo "  CC    ${src#"$root"/}" >&2
        "$CC" "${FLAGS[@]}" -MMD -MF "$dep" -c "$src" -o "$obj"
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

compile "$common/start.S" "$out/obj/common-start.o"
compile "$common/lib.c" "$out/obj/common-lib.o"
commons=("$out/obj/common-start.o" "$out/obj/common-lib.o")

shopt -s nullglob
n=0
for src in "$here"/*.c "$here"/*.S; do
    name="$(basename "$src")"
    name="${name%.*}"
    compile "$src" "$out/obj/$name.o"
    link "$out/$name.elf" "$out/obj/$name.o" "${commons[@]}"
    n=$((n + 1))
done
echo "build.sh: $n guest kernels up to date in $out" >&2
