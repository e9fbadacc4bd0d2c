# Sourced by the scripts in scripts/windows/: paths, and "install it if missing".
# shellcheck shell=sh disable=SC2034 # the variables are for the scripts that source this

TARGET=x86_64-pc-windows-gnu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
EXE_DIR=${EXE_DIR:-"${CARGO_TARGET_DIR:-$ROOT/target}/$TARGET/release"}
CC_WIN=x86_64-w64-mingw32-gcc
CARGO=${CARGO:-cargo}

say() { printf 'windows: %s\n' "$*" >&2; }

# Runs a command as root (directly, or through sudo when we are not root).
as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

# apt_install PACKAGE...: installs Debian packages without questions. `apt-get update`
# runs only when one of them is unknown to the package lists we have.
apt_install() {
    for p in "$@"; do
        if ! apt-cache show "$p" >/dev/null 2>&1; then
            say "apt-get update"
            as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
            break
        fi
    done
    say "apt-get install $*"
    t=$(date +%s)
    as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "$@" >/dev/null
    say "installed $* in $(($(date +%s) - t)) s"
}

# The mingw-w64 C compiler: the linker of our .exe files, and the compiler of the
# stand-in DLL of the smoke test.
ensure_mingw() {
    command -v "$CC_WIN" >/dev/null 2>&1 && return 0
    apt_install gcc-mingw-w64-x86-64
    command -v "$CC_WIN" >/dev/null 2>&1 || { say "$CC_WIN still missing"; exit 1; }
}

ensure_rust_target() {
    rustup target list --installed 2>/dev/null | grep -qx "$TARGET" && return 0
    say "rustup target add $TARGET"
    rustup target add "$TARGET"
}
