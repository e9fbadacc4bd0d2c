#!/bin/sh
# `make rpm`: target/dist/flashpolicyd-VERSION-1.ARCH.rpm for x86_64, i686 and aarch64
# (ARCH picks one), built with rpmbuild from the static binaries: the same files as the .deb (scripts/deb.sh), in the places of a
# Red Hat-like host (/usr/lib/systemd/system, /etc/rc.d/init.d, /etc/sysconfig), and the
# spec's scripts in scripts/rpm/flashpolicyd.spec. On Debian, rpmbuild comes with the
# package rpm (installed here with apt-get when missing and we are root).
set -eu
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/package.sh
. scripts/lib/package.sh
# shellcheck source=scripts/lib/arch.sh
. scripts/lib/arch.sh

if ! command -v rpmbuild >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "rpm.sh: installing rpmbuild (apt-get install rpm)"
        export DEBIAN_FRONTEND=noninteractive
        apt-cache show rpm >/dev/null 2>&1 || apt-get update -qq
        apt-get install -y -qq --no-install-recommends rpm >/dev/null
    else
        echo "rpm.sh: rpmbuild is not installed (Debian: apt-get install rpm)" >&2
        exit 1
    fi
fi
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
[ -n "$version" ] || { echo "rpm.sh: no version in Cargo.toml" >&2; exit 1; }
out=target/dist
archs=$(arch_list)
mtime=$(git log -1 --format=%ct 2>/dev/null || date +%s)

sh scripts/static.sh

mkdir -p "$out"
top=$(mktemp -d "$PWD/$out/.rpm.XXXXXX")
trap 'rm -rf "$top"' EXIT
umask 022

# rpm_build ARCH: target/dist/flashpolicyd-VERSION-1.ARCH.rpm from target/TRIPLE/release
# (rpm's architecture names are the triples' first parts).
rpm_build() {
    root=$top/$1/root
    package_install_tree "$root" "$(arch_dir "$1")"
    install -m 0644 LICENSE LICENSE-MIT LICENSE-APACHE "$root/usr/share/doc/flashpolicyd/"
    package_system_files "$root" /usr/lib/systemd/system /etc/rc.d/init.d /etc/sysconfig/flashpolicyd

    sed -e "s|@VERSION@|$version|" -e "s|@ROOT@|$root|" scripts/rpm/flashpolicyd.spec >"$top/$1/flashpolicyd.spec"
    # Already stripped, no debug info to extract, and none of a Red Hat build host's
    # post-install scripts (which Debian's rpm does not have).
    SOURCE_DATE_EPOCH=$mtime rpmbuild -bb --quiet --target "$1" \
        --define "_topdir $top/$1/rpmbuild" \
        --define "debug_package %{nil}" \
        --define "__os_install_post %{nil}" \
        --define "_build_id_links none" \
        "$top/$1/flashpolicyd.spec"
    rpm=$out/flashpolicyd-$version-1.$1.rpm
    mv "$top/$1/rpmbuild/RPMS/$1/flashpolicyd-$version-1.$1.rpm" "$rpm"
    echo "rpm: $rpm ($(wc -c <"$rpm" | tr -d ' ') bytes)"
}
for arch in $archs; do
    rpm_build "$arch"
done
