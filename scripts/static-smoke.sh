#!/bin/sh
# The smoke test of `make static` (run by .ci/run): the static daemon and checker, copied
# with a policy into an otherwise empty directory, must serve, answer the checker and
# stop cleanly on SIGTERM there. As root the directory is the root of a chroot (no
# /etc, /proc, /dev or libc: what a static binary must do without); otherwise they run
# from it with an empty environment.
# Usage: scripts/static-smoke.sh    (after make static; STATIC_DIR overrides where the
#                                    binaries are)
set -eu
cd "$(dirname "$0")/.."
smoke_name=static-smoke
# shellcheck source=scripts/lib/smoke.sh
. scripts/lib/smoke.sh

dir=${STATIC_DIR:-target/x86_64-unknown-linux-musl/release}
for bin in flashpolicyd flashpolicy-check; do
    [ -x "$dir/$bin" ] || smoke_fail "$dir/$bin is missing: run \`make static\` first"
done

tmp=$(mktemp -d)
trap 'smoke_cleanup; rm -rf "$tmp"' EXIT
root=$tmp/root
mkdir -m 0755 "$root"
cp "$dir/flashpolicyd" "$dir/flashpolicy-check" "$root/"
cp scripts/flashpolicy.xml "$root/policy.xml"

chroot=$(command -v chroot || :) # env -i empties PATH, so by its full path
if [ "$(id -u)" = 0 ] && [ -n "$chroot" ] && "$chroot" "$root" /flashpolicyd --version >/dev/null 2>&1; then
    smoke_say "chroot into $root holding only: $(cd "$root" && echo *)"
    env -i "$chroot" "$root" /flashpolicyd -p 0 -b 127.0.0.1 -f /policy.xml \
        </dev/null >/dev/null 2>"$tmp/daemon.log" &
    smoke_started "$tmp/daemon.log" $!
    smoke_fetch env -i "$chroot" "$root" /flashpolicy-check
else
    if [ "$(id -u)" = 0 ]; then
        smoke_say "SKIPPED the chroot (chroot failed here): running from $root instead"
    else
        smoke_say "not root, so no chroot: running from $root with an empty environment"
    fi
    (cd "$root" && exec env -i ./flashpolicyd -p 0 -b 127.0.0.1 -f policy.xml \
        </dev/null >/dev/null 2>"$tmp/daemon.log") &
    smoke_started "$tmp/daemon.log" $!
    smoke_fetch env -i "$root/flashpolicy-check"
fi
smoke_stop
smoke_say "ok"
