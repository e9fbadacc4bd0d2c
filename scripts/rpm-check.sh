#!/bin/sh
# Checks what `make rpm` wrote (run by .ci/run after make rpm, when rpmbuild installs),
# for each architecture (x86_64, i686, aarch64; ARCH picks one): rpm -qpi's
# Architecture, the file list, the config files, the requirements and the scriptlets, with rpm -qp;
# then the payload unpacked into a scratch root (rpm --root, no scriptlets: this is a
# Debian host, not the Red Hat-like one the package is for), where the daemon must
# accept the packaged policy and serve it to the packaged checker (aarch64's both under
# qemu-aarch64, which scripts/static-smoke.sh installs when missing).
# Usage: scripts/rpm-check.sh
set -eu
cd "$(dirname "$0")/.."
smoke_name="rpm-check"
# shellcheck source=scripts/lib/smoke.sh
. scripts/lib/smoke.sh
# shellcheck source=scripts/lib/arch.sh
. scripts/lib/arch.sh

command -v rpm >/dev/null 2>&1 || smoke_fail "rpm is not installed (make rpm installs it)"
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
tmp=$(mktemp -d)
trap 'smoke_cleanup; rm -rf "$tmp"' EXIT

# rpm_check ARCH: the whole check of the package of ARCH.
rpm_check() {
    arch=$1
    smoke_name="rpm-check[$arch]"
    pkg=$PWD/target/dist/flashpolicyd-$version-1.$arch.rpm
    [ -f "$pkg" ] || smoke_fail "$pkg is missing: run \`make rpm\` first"
    rm -rf "$tmp"
    mkdir "$tmp"
    got=$(rpm -qpi "$pkg" | sed -n 's/^Architecture *: *//p')
    [ "$got" = "$arch" ] || smoke_fail "rpm -qpi: Architecture is \"$got\", not $arch"

    rpm -qlp "$pkg" >"$tmp/files"
    for f in /usr/sbin/flashpolicyd /usr/bin/flashpolicy-check /usr/sbin/flashpolicyd-cron \
        /usr/share/man/man8/flashpolicyd.8.gz /usr/share/man/man1/flashpolicy-check.1.gz \
        /usr/lib/systemd/system/flashpolicyd.service /usr/lib/systemd/system/flashpolicyd.socket \
        /etc/rc.d/init.d/flashpolicyd /etc/sysconfig/flashpolicyd /etc/flashpolicyd/policy.xml \
        /etc/logrotate.d/flashpolicyd /usr/share/doc/flashpolicyd/LICENSE; do
        grep -qx "$f" "$tmp/files" || smoke_fail "rpm -qlp: no $f in the package"
    done
    rpm -qpc "$pkg" >"$tmp/config"
    printf '%s\n' /etc/flashpolicyd/policy.xml /etc/logrotate.d/flashpolicyd \
        /etc/rc.d/init.d/flashpolicyd /etc/sysconfig/flashpolicyd >"$tmp/config.want"
    diff -u "$tmp/config.want" "$tmp/config" >&2 || smoke_fail "rpm -qpc: config files differ (above)"
    if rpm -qp --requires "$pkg" | grep -v '^\(/bin/sh\|shadow-utils\|rpmlib(.*\)' | grep -q .; then
        smoke_fail "rpm -qp --requires: more than /bin/sh and shadow-utils: $(rpm -qp --requires "$pkg" | tr '\n' ' ')"
    fi
    rpm -qp --scripts "$pkg" >"$tmp/scripts"
    grep -q 'useradd --system' "$tmp/scripts" || smoke_fail "%pre creates no system user"
    grep -q 'userdel flashpolicyd' "$tmp/scripts" || smoke_fail "%postun does not remove the user"
    smoke_say "rpm -qp: Architecture $arch, $(wc -l <"$tmp/files") paths, 4 config files, requires only /bin/sh and shadow-utils, scriptlets as expected"

    rpm --root "$tmp/root" --dbpath /rpmdb --initdb
    rpm --root "$tmp/root" --dbpath /rpmdb -i --nodeps --noscripts --notriggers --ignorearch "$pkg" 2>"$tmp/rpm.err" ||
        { cat "$tmp/rpm.err" >&2; smoke_fail "rpm -i into a scratch root failed"; }
    r=$tmp/root
    qemu=$(arch_qemu "$arch")
    [ -z "$qemu" ] || qemu=$(command -v "$qemu") || smoke_fail "no $(arch_qemu "$arch") to run the $arch binaries (apt-get install qemu-user)"
    # shellcheck disable=SC2086 # $qemu is empty or one path
    env -i $qemu "$r/usr/sbin/flashpolicyd" -p 0 -b 127.0.0.1 -f "$r/etc/flashpolicyd/policy.xml" \
        </dev/null >/dev/null 2>"$tmp/daemon.log" &
    smoke_started "$tmp/daemon.log" $!
    # shellcheck disable=SC2086
    smoke_fetch env -i $qemu "$r/usr/bin/flashpolicy-check"
    smoke_stop
    smoke_say "ok (installed only into a scratch root: no Red Hat-like host here${qemu:+; run under $qemu})"
}
for arch in $(arch_list); do
    rpm_check "$arch"
done
