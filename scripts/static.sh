#!/bin/sh
# Builds fully static Linux binaries (musl libc linked in) of flashpolicyd,
# flashpolicy-check and flashpolicy-bench for x86_64, i686 and aarch64, into
# target/<arch>-unknown-linux-musl/release/: for old hosts whose glibc is older than the
# build machine's, 32-bit VPSes and ARM boards. Pure Rust needs no C toolchain for
# these targets: Rust ships the musl C runtime, and rust-lld (in Rust's sysroot; set as
# the linker of the foreign targets in .cargo/config.toml) links them.
# Usage: scripts/static.sh               (make static: every architecture)
#        ARCH=aarch64 scripts/static.sh  (make static ARCH=aarch64: one of them)
set -eu
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/arch.sh
. scripts/lib/arch.sh

cargo=${CARGO:-cargo}
archs=$(arch_list)

for arch in $archs; do
    target=$(arch_triple "$arch")
    if command -v rustup >/dev/null 2>&1; then
        rustup target add "$target" # a no-op when it is already installed
    else
        echo "static.sh: no rustup: assuming the $target standard library is installed" >&2
    fi
    # --bins: every binary of the crate (daemon, checker, load client) wherever its source is.
    "$cargo" build --release --target "$target" --bins
done

for arch in $archs; do
    dir=$(arch_dir "$arch")
    for bin in flashpolicyd flashpolicy-check flashpolicy-bench; do
        path=$dir/$bin
        # Static means: no program interpreter (ld.so) and no shared library needed. Ask
        # file(1) first; it says "static-pie linked" for static position-independent
        # executables, which is what Rust builds for musl.
        static=no
        if command -v file >/dev/null 2>&1; then
            case $(file -L "$path") in
                *"statically linked"* | *"static-pie linked"*) static=yes ;;
            esac
        fi
        if [ "$static" = no ] && command -v readelf >/dev/null 2>&1; then
            if ! readelf -l "$path" | grep -q 'INTERP' && ! readelf -d "$path" | grep -q 'NEEDED'; then
                static=yes
            fi
        fi
        if [ "$static" = no ]; then
            echo "static.sh: $path is not statically linked:" >&2
            { file -L "$path" || :; ldd "$path" || :; } >&2 2>/dev/null
            exit 1
        fi
        size=$(wc -c <"$path" | tr -d ' ')
        echo "$path: static ($arch), $size bytes"
    done
done
