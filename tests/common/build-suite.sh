# Shared by tests/programs/build.sh and tests/guests/build.sh (sourced, not
# run): the compiler check, the flags, incremental compile and link, and the
# one-program-per-source loop.  Each suite links its programs with its own
# common/ (startup code, environment, link.ld) and with tests/common/testlib.c.
#
#   suite_setup SUITE_DIR OUTDIR MARCH
#       sets root, out (made absolute), common (SUITE_DIR/common), shared
#       (tests/common), CC, FLAGS and LDFLAGS; starts afresh when the flags,
#       the compiler or the build scripts changed.
#   compile SRC OBJ [extra flags...]
#   link ELF OBJS...
#   build_each OBJS...
#       every SUITE_DIR/*.c and *.S -> OUTDIR/<name>.elf linked with OBJS;
#       adds the number built to n.

suite_setup() {
    suite="$1"
    shared="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
    root="$(cd "$shared/../.." && pwd)"
    out="$2"
    mkdir -p "$out/obj"
    out="$(cd "$out" && pwd)"
    common="$suite/common"
    n=0

    CC="${CC:-riscv64-linux-gnu-gcc}"
    if ! command -v "$CC" >/dev/null 2>&1; then
        echo "build.sh: ERROR: RISC-V compiler '$CC' not found." >&2
        echo "build.sh: install it with: apt-get install gcc-riscv64-linux-gnu" >&2
        exit 1
    fi

    FLAGS=(-march="$3" -mabi=lp64d -mcmodel=medany -nostdlib -nostartfiles
           -ffreestanding -static -O2 -fno-pie -no-pie -mno-relax
           -fno-asynchronous-unwind-tables -fno-unwind-tables
           -Wall -Wno-unused-function -I "$common" -I "$shared")
    LDFLAGS=(-T "$common/link.ld" -Wl,--no-warn-rwx-segments -Wl,--build-id=none)

    # Rebuild everything when the flags, the compiler or a build script change.
    local stamp="$out/obj/.flags" flags_now
    flags_now="$("$CC" --version | head -n1) ${FLAGS[*]} ${LDFLAGS[*]} $(cat "${BASH_SOURCE[@]}" | cksum)"
    if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$flags_now" ]]; then
        rm -f "$out"/obj/*.o "$out"/obj/*.d
        printf '%s' "$flags_now" > "$stamp"
    fi
}

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

# build_each OBJS...
build_each() {
    local src name
    shopt -s nullglob
    for src in "$suite"/*.c "$suite"/*.S; do
        name="$(basename "$src")"
        name="${name%.*}"
        compile "$src" "$out/obj/$name.o"
        link "$out/$name.elf" "$out/obj/$name.o" "$@"
        n=$((n + 1))
    done
}
