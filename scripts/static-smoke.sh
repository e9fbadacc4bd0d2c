#!/bin/sh
# The smoke test of `make static` (run by .ci/run): for each architecture (x86_64,
# i686, aarch64; ARCH picks one), the static daemon and checker, copied with a policy
# into an otherwise empty directory, must serve, answer the checker with OK, reload the
# policy when it is edited (and serve the new one), and stop cleanly on SIGTERM there.
# x86_64 and i686 run natively: as root the directory is the root of a chroot (no
# /etc, /proc, /dev or libc: what a static binary must do without); otherwise they run
# from it with an empty environment. aarch64 runs under qemu-user (qemu-aarch64, from
# Debian's qemu-user, installed with apt-get when missing and we are root), daemon and
# checker alike, from the directory with an empty environment (the emulator itself is
# not static, so it cannot run inside the empty chroot).
# Usage: scripts/static-smoke.sh    (after make static; ARCH=aarch64 checks one;
#                                    STATIC_DIR overrides where the binaries are)
set -eu
cd "$(dirname "$0")/.."
smoke_name=static-smoke
# shellcheck source=scripts/lib/smoke.sh
. scripts/lib/smoke.sh
# shellcheck source=scripts/lib/arch.sh
. scripts/lib/arch.sh
archs=$(arch_list)

tmp=$(mktemp -d)
trap 'smoke_cleanup; rm -rf "$tmp"' EXIT
chmod 0755 "$tmp"

# emulator ARCH: prints the full path of the qemu-user emulator ARCH needs (nothing
# when it runs natively), installing qemu-user when it is missing; fails when it cannot.
emulator() {
    q=$(arch_qemu "$1")
    [ -n "$q" ] || return 0
    if ! command -v "$q" >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        smoke_say "installing qemu-user for $q (apt-get)" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-cache show qemu-user >/dev/null 2>&1 || apt-get update -qq >&2
        apt-get install -y -qq --no-install-recommends qemu-user >"$tmp/apt.log" 2>&1 ||
            { cat "$tmp/apt.log" >&2; smoke_fail "apt-get install qemu-user failed"; }
    fi
    command -v "$q" || smoke_fail "$q is not installed (Debian: apt-get install qemu-user)"
}

# smoke_arch ARCH: the whole check for one architecture's binaries.
smoke_arch() {
    arch=$1
    smoke_name=static-smoke[$arch]
    dir=${STATIC_DIR:-$(arch_dir "$arch")}
    for bin in flashpolicyd flashpolicy-check; do
        [ -x "$dir/$bin" ] || smoke_fail "$dir/$bin is missing: run \`make static\` first"
    done
    qemu=$(emulator "$arch")
    root=$tmp/$arch
    mkdir -m 0755 "$root"
    cp "$dir/flashpolicyd" "$dir/flashpolicy-check" "$root/"
    cp scripts/flashpolicy.xml "$root/policy.xml"
    log=$tmp/$arch.log
    # 0.2 s: the reload check below need not wait the default 5 s.
    opts="-p 0 -b 127.0.0.1 --reload-interval 0.2"

    chroot=$(command -v chroot || :) # env -i empties PATH, so by its full path
    if [ -n "$qemu" ]; then
        smoke_say "under $qemu, from $root holding only: $(cd "$root" && echo *)"
        # shellcheck disable=SC2086 # $opts is a list of options
        (cd "$root" && exec env -i "$qemu" ./flashpolicyd $opts -f policy.xml \
            </dev/null >/dev/null 2>"$log") &
        smoke_started "$log" $!
        smoke_fetch env -i "$qemu" "$root/flashpolicy-check"
        smoke_reload "$root/policy.xml" env -i "$qemu" "$root/flashpolicy-check"
    elif [ "$(id -u)" = 0 ] && [ -n "$chroot" ] && "$chroot" "$root" /flashpolicyd --version >/dev/null 2>&1; then
        smoke_say "chroot into $root holding only: $(cd "$root" && echo *)"
        # shellcheck disable=SC2086
        env -i "$chroot" "$root" /flashpolicyd $opts -f /policy.xml \
            </dev/null >/dev/null 2>"$log" &
        smoke_started "$log" $!
        smoke_fetch env -i "$chroot" "$root" /flashpolicy-check
        smoke_reload "$root/policy.xml" env -i "$chroot" "$root" /flashpolicy-check
    else
        if [ "$(id -u)" = 0 ]; then
            [ -z "${CI:-}" ] || smoke_fail "chroot into $root failed (CI runs as root: it must work)"
            smoke_say "SKIPPED the chroot (chroot failed here): running from $root instead"
        else
            smoke_say "not root, so no chroot: running from $root with an empty environment"
        fi
        # shellcheck disable=SC2086
        (cd "$root" && exec env -i ./flashpolicyd $opts -f policy.xml \
            </dev/null >/dev/null 2>"$log") &
        smoke_started "$log" $!
        smoke_fetch env -i "$root/flashpolicy-check"
        smoke_reload "$root/policy.xml" env -i "$root/flashpolicy-check"
    fi
    smoke_stop
    smoke_say "ok"
}

for arch in $archs; do
    smoke_arch "$arch"
done
