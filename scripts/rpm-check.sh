#!/bin/sh
# Checks what `make rpm` wrote (run by .ci/run after make rpm, when rpmbuild installs):
# the file list, the config files, the requirements and the scriptlets, with rpm -qp;
# then the payload unpacked into a scratch root (rpm --root, no scriptlets: this is a
# Debian host, not the Red Hat-like one the package is for), where the daemon must
# accept the packaged policy and serve it to the packaged checker.
# Usage: scripts/rpm-check.sh
set -eu
cd "$(dirname "$0")/.."
smoke_name="rpm-check"
# shellcheck source=scripts/lib/smoke.sh
. scripts/lib/smoke.sh

command -v rpm >/dev/null 2>&1 || smoke_fail "rpm is not installed (make rpm installs it)"
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
pkg=$PWD/target/dist/flashpolicyd-$version-1.x86_64.rpm
[ -f "$pkg" ] || smoke_fail "$pkg is missing: run \`make rpm\` first"
tmp=$(mktemp -d)
trap 'smoke_cleanup; rm -rf "$tmp"' EXIT

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
smoke_say "rpm -qp: $(wc -l <"$tmp/files") paths, 4 config files, requires only /bin/sh and shadow-utils, scriptlets as expected"

rpm --root "$tmp/root" --dbpath /rpmdb --initdb
rpm --root "$tmp/root" --dbpath /rpmdb -i --nodeps --noscripts --notriggers "$pkg" 2>"$tmp/rpm.err" ||
    { cat "$tmp/rpm.err" >&2; smoke_fail "rpm -i into a scratch root failed"; }
r=$tmp/root
env -i "$r/usr/sbin/flashpolicyd" -p 0 -b 127.0.0.1 -f "$r/etc/flashpolicyd/policy.xml" \
    </dev/null >/dev/null 2>"$tmp/daemon.log" &
smoke_started "$tmp/daemon.log" $!
smoke_fetch env -i "$r/usr/bin/flashpolicy-check"
smoke_stop
smoke_say "ok (installed only into a scratch root: no Red Hat-like host here)"
