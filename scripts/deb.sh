#!/bin/sh
# `make deb`: target/dist/flashpolicyd_VERSION_DEBARCH.deb for amd64, i386 and arm64
# (ARCH=x86_64, i686 or aarch64 picks one), built with dpkg-deb from the static
# binaries (so it installs on old Debian and Ubuntu releases too):
#   /usr/sbin/flashpolicyd, /usr/sbin/flashpolicyd-cron, /usr/bin/flashpolicy-check,
#   man pages, docs and examples (all laid out by scripts/install.sh, PREFIX=/usr),
#   /lib/systemd/system/flashpolicyd.{service,socket}, /etc/init.d/flashpolicyd,
#   /etc/default/flashpolicyd, /etc/flashpolicyd/policy.xml, /etc/logrotate.d/flashpolicyd
#   (the files under /etc are conffiles), the maintainer scripts in scripts/deb/, and
#   for i386 and arm64 (whose static binaries are not static-pie) a lintian override.
# The units, init script and logrotate file are the ones in scripts/, with the paths
# of this layout and the package's system user (flashpolicyd) in place of nobody or a
# dynamic user. DEB_MAINTAINER overrides the Maintainer field.
set -eu
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/package.sh
. scripts/lib/package.sh
# shellcheck source=scripts/lib/arch.sh
. scripts/lib/arch.sh

command -v dpkg-deb >/dev/null 2>&1 || { echo "deb.sh: dpkg-deb is not installed (package dpkg)" >&2; exit 1; }
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
[ -n "$version" ] || { echo "deb.sh: no version in Cargo.toml" >&2; exit 1; }
maintainer=${DEB_MAINTAINER:-"flashpolicyd maintainers <$(git log -1 --format=%ae 2>/dev/null || echo root@localhost)>"}
mtime=$(git log -1 --format=%ct 2>/dev/null || date +%s)
out=target/dist
archs=$(arch_list)

sh scripts/static.sh

mkdir -p "$out"
stage=$(mktemp -d "$out/.deb.XXXXXX")
trap 'rm -rf "$stage"' EXIT
umask 022

# deb_build ARCH: target/dist/flashpolicyd_VERSION_DEBARCH.deb from target/TRIPLE/release.
deb_build() {
    debarch=$(arch_deb "$1")
    deb=$out/flashpolicyd_${version}_$debarch.deb
    root=$stage/$debarch
    package_install_tree "$root" "$(arch_dir "$1")"
    doc=$root/usr/share/doc/flashpolicyd
    for f in "$doc"/*.md; do gzip -9n "$f"; done
    {
        echo "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/"
        echo "Upstream-Name: flashpolicyd"
        echo
        echo "Files: *"
        echo "Copyright: 2026 the flashpolicyd authors"
        echo "License: MIT or Apache-2.0"
        echo
        echo "License: MIT"
        sed -e 's/^$/./' -e 's/^/ /' LICENSE-MIT
        echo
        echo "License: Apache-2.0"
        echo " On Debian systems, the full text of the Apache License, Version 2.0 can be"
        echo " found in /usr/share/common-licenses/Apache-2.0."
    } >"$doc/copyright"
    chmod 0644 "$doc/copyright"
    {
        echo "flashpolicyd ($version) unstable; urgency=medium"
        echo
        echo "  * Release $version, built from the static (musl) binaries by make deb."
        echo
        echo " -- $maintainer  $(LC_ALL=C date -u -R -d "@$mtime")"
    } | gzip -9n >"$doc/changelog.gz"
    chmod 0644 "$doc/changelog.gz"

    # Static on purpose: lintian is told so (scripts/deb/lintian-overrides).
    if [ "$debarch" != amd64 ]; then
        install -D -m 0644 scripts/deb/lintian-overrides "$root/usr/share/lintian/overrides/flashpolicyd"
    fi

    # The system files, from scripts/ with this package's paths and user.
    package_system_files "$root" /lib/systemd/system /etc/init.d /etc/default/flashpolicyd

    # Control area.
    install -d "$root/DEBIAN"
    size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
    sed -e "s|@VERSION@|$version|" -e "s|@ARCH@|$debarch|" -e "s|@MAINTAINER@|$maintainer|" -e "s|@SIZE@|$size|" \
        scripts/deb/control >"$root/DEBIAN/control"
    (cd "$root" && find etc -type f | LC_ALL=C sort | sed 's|^|/|') >"$root/DEBIAN/conffiles"
    for s in postinst prerm postrm; do
        install -m 0755 "scripts/deb/$s" "$root/DEBIAN/$s"
    done
    (cd "$root" && find . -path ./DEBIAN -prune -o -type f -print | LC_ALL=C sort |
        sed 's|^\./||' | while IFS= read -r f; do md5sum "$f"; done) >"$root/DEBIAN/md5sums"
    chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/conffiles" "$root/DEBIAN/md5sums"

    find "$root" -exec touch -h -d "@$mtime" {} +
    SOURCE_DATE_EPOCH=$mtime dpkg-deb --root-owner-group -Zxz --build "$root" "$deb.tmp" >/dev/null
    mv "$deb.tmp" "$deb"
    echo "deb: $deb ($(wc -c <"$deb" | tr -d ' ') bytes)"
}
for arch in $archs; do
    deb_build "$arch"
done
