#!/bin/sh
# Proves that `make test` passes for an unprivileged user (run as root; a non-root user
# just runs `make test`). Clones HEAD into a scratch directory owned by TEST_USER
# (default nobody), with a copy of the crates cargo has downloaded, and runs `make test`
# there as that user with an empty environment. The Rust toolchain root uses is made
# visible to that user by a bind mount in a private mount namespace (rustup's toolchain
# usually sits under /root, which other users cannot enter); nothing outside the
# scratch directory changes. Tests that need root say SKIPPED and why.
# Usage: TEST_USER=nobody scripts/test-as-user.sh
set -eu
cd "$(dirname "$0")/.."
user=${TEST_USER:-nobody}
[ "$(id -u)" = 0 ] || { echo "test-as-user: run as root (as $(id -un), just run make test)" >&2; exit 2; }
uid=$(id -u "$user")
gid=$(id -g "$user")
sysroot=$(rustc --print sysroot)
cargo_home=${CARGO_HOME:-$HOME/.cargo}

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
chmod 0755 "$dir"
git clone -q . "$dir/clone"
mkdir -p "$dir/home" "$dir/cargo" "$dir/toolchain"
if [ -d "$cargo_home/registry" ]; then
    cp -a "$cargo_home/registry" "$dir/cargo/"
fi
chown -R "$uid:$gid" "$dir/clone" "$dir/home" "$dir/cargo"
echo "test-as-user: $(git rev-parse --short HEAD) in $dir/clone, as $user (uid $uid), toolchain $sysroot"

# shellcheck disable=SC2016 # expanded by the inner shell
unshare -m sh -c '
    set -eu
    mount --bind "$1" "$2/toolchain"
    exec setpriv --reuid="$3" --regid="$4" --init-groups \
        env -i HOME="$2/home" CARGO_HOME="$2/cargo" PATH="$2/toolchain/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
        sh -c "cd \"\$0\" && make test" "$2/clone"
' sh "$sysroot" "$dir" "$uid" "$gid"
