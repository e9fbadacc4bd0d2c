#!/bin/sh
# `make dist`: the release tarballs for Linux hosts, one per architecture (ARCH picks
# one: x86_64, i686, aarch64; all by default),
#   target/dist/flashpolicyd-VERSION-ARCH-linux-musl.tar.gz
# each one top folder holding the static binaries (bin/), the man pages and guides (docs/),
# the example policy and service files (scripts/), README, LICENSE, an install.sh that
# needs only sh and coreutils (PREFIX=/opt/fpd ./install.sh, like `make install`), and
# SHA256SUMS (`sha256sum -c SHA256SUMS` from inside the folder).
# Then, when the Windows target builds (scripts/windows/build.sh installs what it needs
# on Debian as root), target/dist/flashpolicyd-VERSION-x86_64-windows.zip; otherwise a
# line says why not. DIST_WINDOWS=no skips it.
set -eu
cd "$(dirname "$0")/.."

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
[ -n "$version" ] || { echo "dist.sh: no version in Cargo.toml" >&2; exit 1; }
out=target/dist
# shellcheck source=scripts/lib/arch.sh
. scripts/lib/arch.sh
archs=$(arch_list)
# Files carry the last commit's time, so that two runs on one commit give one tarball.
mtime=$(git log -1 --format=%ct 2>/dev/null || date +%s)

sh scripts/static.sh

mkdir -p "$out"
stage=$(mktemp -d "$PWD/$out/.stage.XXXXXX")
trap 'rm -rf "$stage"' EXIT

# sums DIR: writes DIR/SHA256SUMS for every other file under DIR, by relative path.
sums() {
    (cd "$1" && find . -type f ! -name SHA256SUMS | sed 's|^\./||' | LC_ALL=C sort |
        while IFS= read -r f; do sha256sum "$f"; done >"$stage/sums")
    mv "$stage/sums" "$1/SHA256SUMS"
}

# --- the Linux tarballs ----------------------------------------------------------------
# linux_tarball ARCH: target/dist/flashpolicyd-VERSION-ARCH-linux-musl.tar.gz.
linux_tarball() {
    musl=$(arch_dir "$1")
    name=flashpolicyd-$version-$1-linux-musl
    top=$stage/$name
    mkdir -p "$top/bin" "$top/docs" "$top/scripts"
    for bin in flashpolicyd flashpolicy-check flashpolicy-bench; do
        install -m 0755 "$musl/$bin" "$top/bin/$bin"
    done
    install -m 0644 README.md LICENSE LICENSE-MIT LICENSE-APACHE "$top/"
    install -m 0644 docs/flashpolicyd.8 docs/flashpolicy-check.1 docs/deploying.md \
        docs/artefacts.md docs/migrating.md docs/players.md "$top/docs/"
    # The files scripts/install.sh installs, where it expects them: it runs unchanged.
    cp -R scripts/systemd scripts/init.d scripts/xinetd scripts/logrotate scripts/nagios \
        scripts/flashpolicyd-cron scripts/flashpolicy.xml scripts/install.sh "$top/scripts/"
    cat >"$top/install.sh" <<'INSTALL'
#!/bin/sh
# Installs this release by hand, on a host without make or cargo: the same files in the
# same places as `make install` (scripts/install.sh, which this runs).
#   PREFIX=/opt/fpd ./install.sh      (default PREFIX=/usr/local; DESTDIR is honoured)
# Then: PREFIX/sbin/flashpolicyd, PREFIX/bin/flashpolicy-check, the man pages, and the
# example policy and service files in PREFIX/share/doc/flashpolicyd/examples/.
set -eu
cd "$(dirname "$0")"
BUILD_DIR=bin exec sh scripts/install.sh
INSTALL
    chmod 0755 "$top/install.sh"
    sums "$top"
    find "$top" -exec touch -h -d "@$mtime" {} +
    tarball=$out/$name.tar.gz
    tar -C "$stage" --sort=name --owner=0 --group=0 --numeric-owner -cf - "$name" |
        gzip -9n >"$tarball.tmp"
    mv "$tarball.tmp" "$tarball"
    echo "dist: $tarball ($(wc -c <"$tarball" | tr -d ' ') bytes)"
}
for arch in $archs; do
    linux_tarball "$arch"
done

# --- the Windows zip -------------------------------------------------------------------
wname=flashpolicyd-$version-x86_64-windows
zipfile=$out/$wname.zip
rm -f "$zipfile" # no zip from an earlier run beside this tarball
if [ "${DIST_WINDOWS:-yes}" = no ]; then
    echo "dist: windows zip skipped (DIST_WINDOWS=no)"
    exit 0
fi
case $archs in
    *x86_64*) ;;
    *) echo "dist: windows zip skipped (ARCH=$ARCH)"; exit 0 ;;
esac
if ! sh scripts/windows/build.sh >"$stage/windows.log" 2>&1; then
    echo "dist: windows zip skipped: the Windows build failed (make windows):" >&2
    tail -n 5 "$stage/windows.log" >&2
    exit 0
fi
wtop=$stage/$wname
mkdir -p "$wtop/docs"
for exe in flashpolicyd flashpolicy-check flashpolicy-bench; do
    install -m 0755 "target/x86_64-pc-windows-gnu/release/$exe.exe" "$wtop/"
done
install -m 0644 README.md LICENSE LICENSE-MIT LICENSE-APACHE scripts/flashpolicy.xml "$wtop/"
install -m 0644 docs/windows.md docs/deploying.md "$wtop/docs/"
sums "$wtop"
find "$wtop" -exec touch -h -d "@$mtime" {} +
(cd "$stage" && find "$wname" | LC_ALL=C sort | zip -q -X -@ "$OLDPWD/$zipfile")
echo "dist: $zipfile ($(wc -c <"$zipfile" | tr -d ' ') bytes)"
