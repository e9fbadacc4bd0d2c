#!/bin/sh
# `make windows`: cross-builds flashpolicyd.exe and flashpolicy-check.exe (and any other
# binary of the crate) for x86_64-pc-windows-gnu into target/x86_64-pc-windows-gnu/release/.
# Installs the mingw-w64 linker (Debian's gcc-mingw-w64-x86-64) and the Rust target if
# they are missing; the linker itself is named in .cargo/config.toml.
#
# build.sh --check: only type-checks every target (lib, bins, tests) for Windows, which
# needs the Rust target but no linker: a quick guard against a broken cfg(unix) seam.
set -eu
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/common.sh"

ensure_rust_target
cd "$ROOT"
if [ "${1:-}" = --check ]; then
    exec "$CARGO" check --target "$TARGET" --all-targets
fi
ensure_mingw
"$CARGO" build --release --target "$TARGET" --bins
ls -l "$EXE_DIR"/*.exe
