#!/bin/sh
# Checks what `make dist` wrote, the way a user takes it (run by .ci/run after make
# dist), for each architecture's tarball (x86_64, i686, aarch64; ARCH picks one; the
# aarch64 binaries run under qemu-aarch64): the tarball holds one top folder; inside it `sha256sum -c SHA256SUMS` passes;
# its install.sh, run with an empty environment and no Rust toolchain on PATH, installs
# into a scratch prefix; the installed daemon serves the installed example policy, the
# installed checker fetches it, and SIGTERM stops the daemon with exit 0. When a Windows
# zip is there too, its listing and its SHA256SUMS are checked.
# Usage: scripts/dist-check.sh
set -eu
cd "$(dirname "$0")/.."
smoke_name=dist-check
# shellcheck source=scripts/lib/smoke.sh
. scripts/lib/smoke.sh
# shellcheck source=scripts/lib/arch.sh
. scripts/lib/arch.sh

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
tmp=$(mktemp -d)
trap 'smoke_cleanup; rm -rf "$tmp"' EXIT
chmod 0755 "$tmp"

# dist_check ARCH: the checks of ARCH's tarball.
dist_check() {
    arch=$1
    smoke_name="dist-check[$arch]"
    name=flashpolicyd-$version-$arch-linux-musl
    tarball=$PWD/target/dist/$name.tar.gz
    [ -f "$tarball" ] || smoke_fail "$tarball is missing: run \`make dist\` first"
    rm -rf "${tmp:?}"/*

    tops=$(tar -tzf "$tarball" | cut -d/ -f1 | sort -u)
    [ "$tops" = "$name" ] || smoke_fail "the tarball's top level is \"$tops\", not one folder $name"
    tar -C "$tmp" -xzf "$tarball"
    top=$tmp/$name
    for f in install.sh README.md LICENSE SHA256SUMS bin/flashpolicyd bin/flashpolicy-check \
        bin/flashpolicy-bench docs/flashpolicyd.8 docs/flashpolicy-check.1 \
        scripts/flashpolicy.xml scripts/flashpolicyd-cron scripts/init.d/flashpolicyd \
        scripts/systemd/flashpolicyd.service scripts/systemd/flashpolicyd.socket \
        scripts/xinetd/flashpolicyd scripts/logrotate/flashpolicyd; do
        [ -f "$top/$f" ] || smoke_fail "the tarball has no $name/$f"
    done
    case $(file -L "$top/bin/flashpolicyd") in
        *"$(arch_machine "$arch")"*) ;;
        *) smoke_fail "bin/flashpolicyd is not a $(arch_machine "$arch") binary: $(file -L "$top/bin/flashpolicyd")" ;;
    esac
    (cd "$top" && sha256sum --quiet -c SHA256SUMS) || smoke_fail "sha256sum -c SHA256SUMS failed in $name/"
    smoke_say "$(basename "$tarball"): one top folder, $(wc -l <"$top/SHA256SUMS") files, sha256sum -c passes"

    prefix=$tmp/prefix
    env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin PREFIX="$prefix" "$top/install.sh" >"$tmp/install.log" 2>&1 ||
        { cat "$tmp/install.log" >&2; smoke_fail "PREFIX=$prefix ./install.sh failed"; }
    for f in sbin/flashpolicyd bin/flashpolicy-check sbin/flashpolicyd-cron \
        share/man/man8/flashpolicyd.8 share/doc/flashpolicyd/examples/flashpolicy.xml; do
        [ -f "$prefix/$f" ] || smoke_fail "install.sh did not install $f"
    done
    smoke_say "install.sh (empty environment, no cargo on PATH) installed into $prefix"

    qemu=$(arch_qemu "$arch")
    [ -z "$qemu" ] || qemu=$(command -v "$qemu") || smoke_fail "no $(arch_qemu "$arch") to run the $arch binaries (apt-get install qemu-user)"
    # shellcheck disable=SC2086 # $qemu is empty or one path
    env -i $qemu "$prefix/sbin/flashpolicyd" -p 0 -b 127.0.0.1 \
        -f "$prefix/share/doc/flashpolicyd/examples/flashpolicy.xml" \
        </dev/null >/dev/null 2>"$tmp/daemon.log" &
    smoke_started "$tmp/daemon.log" $!
    # shellcheck disable=SC2086
    smoke_fetch env -i $qemu "$prefix/bin/flashpolicy-check"
    smoke_stop
}
for arch in $(arch_list); do
    dist_check "$arch"
done
smoke_name=dist-check

zipfile=target/dist/flashpolicyd-$version-x86_64-windows.zip
if [ -f "$zipfile" ]; then
    if command -v unzip >/dev/null 2>&1; then
        unzip -q "$zipfile" -d "$tmp/win"
        wtop=$tmp/win/flashpolicyd-$version-x86_64-windows
        for f in flashpolicyd.exe flashpolicy-check.exe flashpolicy.xml SHA256SUMS; do
            [ -f "$wtop/$f" ] || smoke_fail "the Windows zip has no $f"
        done
        (cd "$wtop" && sha256sum --quiet -c SHA256SUMS) || smoke_fail "sha256sum -c failed in the Windows zip"
        smoke_say "$(basename "$zipfile"): .exe files present, sha256sum -c passes"
    else
        smoke_say "SKIPPED the Windows zip check: unzip is not installed"
    fi
else
    smoke_say "no Windows zip in target/dist (make dist says why): not checked"
fi
smoke_say "ok"
