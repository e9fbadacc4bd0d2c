#!/bin/sh
# `make check-unixes` (run by .ci/run): the other Unixes must at least compile. For
# FreeBSD, NetBSD and macOS (Intel and Apple silicon), `cargo check` and `cargo clippy
# -- -D warnings` of every target: library, binaries, tests, benches and examples. No
# linking and no running (that needs the system's own libc): what this catches is a
# type or an API that differs there (rlim_t is i64 on FreeBSD; macOS has no
# SOCK_CLOEXEC and nix offers no getgroups there), which otherwise breaks silently.
#
# One dev-dependency of the tests (psm, under openmetrics-parser) assembles a few
# lines with a C compiler for the target. For the BSDs on x86_64 the host's cc does
# (same architecture, same object format); macOS needs Mach-O objects, which clang
# makes for any target without an SDK. So for macOS clang is installed (Debian's clang,
# apt-get, as root) when missing; without it only the library and binaries are checked
# there, and a SKIPPED line says so (in CI, where CI=true, that is a failure instead).
# Usage: scripts/check-unixes.sh              (all four)
#        UNIX_TARGETS=x86_64-unknown-freebsd scripts/check-unixes.sh
set -eu
cd "$(dirname "$0")/.."

cargo=${CARGO:-cargo}
targets=${UNIX_TARGETS:-x86_64-unknown-freebsd x86_64-unknown-netbsd x86_64-apple-darwin aarch64-apple-darwin}
say() { echo "check-unixes: $*"; }
fail() {
    echo "check-unixes: FAILED: $*" >&2
    exit 1
}
# skip WHY: a check this machine cannot make: SKIPPED here, a failure in CI.
skip() {
    [ "${CI:-}" != true ] || fail "$* (CI must not skip it)"
    say "SKIPPED $*"
}

# clang_ready: true when clang is there, installing it (Debian, root) when it is not.
clang_ready() {
    command -v clang >/dev/null 2>&1 && return 0
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        return 1
    fi
    say "installing clang (apt-get) to assemble psm's Mach-O objects for macOS"
    export DEBIAN_FRONTEND=noninteractive
    apt-cache show clang >/dev/null 2>&1 || apt-get update -qq || :
    apt-get install -y -qq --no-install-recommends clang >/dev/null || :
    command -v clang >/dev/null 2>&1
}

for target in $targets; do
    start=$(date +%s)
    if command -v rustup >/dev/null 2>&1; then
        # A no-op when installed; the standard library is all a check needs.
        if ! rustup target add "$target" >/dev/null 2>&1; then
            skip "$target: its standard library could not be installed (rustup target add)"
            continue
        fi
    fi
    what="--all-targets"
    case $target in
        *-apple-darwin)
            if clang_ready; then
                # cc-rs reads CC_<target with underscores>; clang knows -arch and
                # -mmacosx-version-min, which it passes for Apple targets.
                export "CC_$(echo "$target" | tr '-' '_')=clang"
            else
                skip "$target tests, benches and examples: no clang to assemble psm's Mach-O objects (checking the library and binaries only)"
                what="--lib --bins"
            fi
            ;;
    esac
    # shellcheck disable=SC2086 # $what is one or two flags
    "$cargo" check --quiet --target "$target" $what ||
        fail "cargo check --target $target $what"
    # shellcheck disable=SC2086
    "$cargo" clippy --quiet --target "$target" $what -- -D warnings ||
        fail "cargo clippy --target $target $what -- -D warnings"
    say "$target: cargo check and clippy -D warnings ($what) pass ($(($(date +%s) - start)) s)"
done
say "ok"
