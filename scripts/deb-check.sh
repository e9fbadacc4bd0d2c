#!/bin/sh
# Checks what `make deb` wrote (run by .ci/run after make deb), for each architecture
# (amd64, i386, arm64; ARCH=x86_64, i686 or aarch64 picks one):
#  1. dpkg-deb -c / -I: the file list, the control fields (Architecture the package's),
#     the conffiles and the maintainer scripts are what the package promises; its
#     binaries are static and built for that architecture (file(1)); its daemon passes
#     --check-config on the packaged policy (arm64: under qemu-aarch64).
#  2. lintian reports no error (installed with apt-get when missing and we are root;
#     otherwise a SKIPPED line says why).
#  3. For the package of this machine's architecture (amd64 here), as root, with the
#     package not installed: dpkg -i; the user exists and nothing
#     was started (on a host without systemd); the init script starts the daemon with
#     the options of /etc/default/flashpolicyd (edited, as an operator would, to a free
#     loopback port instead of 843, which may be taken), it runs as flashpolicyd and
#     serves the installed policy to the installed checker; installing the package
#     again keeps the edit and restarts the daemon; it stops; dpkg --purge removes the
#     user, /etc/flashpolicyd, the log and the boot links. Otherwise a SKIPPED line
#     says why.
# Usage: scripts/deb-check.sh
set -eu
cd "$(dirname "$0")/.."
smoke_name="deb-check"
# shellcheck source=scripts/lib/smoke.sh
. scripts/lib/smoke.sh
# shellcheck source=scripts/lib/arch.sh
. scripts/lib/arch.sh

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
archs=$(arch_list)
for arch in $archs; do
    deb=$PWD/target/dist/flashpolicyd_${version}_$(arch_deb "$arch").deb
    [ -f "$deb" ] || smoke_fail "$deb is missing: run \`make deb\` first"
done
tmp=$(mktemp -d)
installed_here=no
cleanup() {
    if [ "$installed_here" = yes ]; then
        /etc/init.d/flashpolicyd stop >/dev/null 2>&1 || :
        # Up to 2 minutes for a dpkg lock another installation (apt-get) holds.
        i=0
        until dpkg --purge flashpolicyd >"$tmp/purge.log" 2>&1; do
            if ! grep -q 'lock' "$tmp/purge.log" || [ "$i" -ge 120 ]; then
                break
            fi
            sleep 1
            i=$((i + 1))
        done
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT

# deb_contents ARCH: parts 1 and 2 for the package of ARCH.
deb_contents() {
    arch=$1
    debarch=$(arch_deb "$arch")
    smoke_name="deb-check[$debarch]"
    deb=$PWD/target/dist/flashpolicyd_${version}_$debarch.deb
    # --- 1. contents ---------------------------------------------------------------------
    dpkg-deb -c "$deb" | awk '{print $NF}' | sed 's|^\./|/|' >"$tmp/files"
    for f in /usr/sbin/flashpolicyd /usr/bin/flashpolicy-check /usr/sbin/flashpolicyd-cron \
        /usr/share/man/man8/flashpolicyd.8.gz /usr/share/man/man1/flashpolicy-check.1.gz \
        /lib/systemd/system/flashpolicyd.service /lib/systemd/system/flashpolicyd.socket \
        /etc/init.d/flashpolicyd /etc/default/flashpolicyd /etc/flashpolicyd/policy.xml \
        /etc/logrotate.d/flashpolicyd /usr/share/doc/flashpolicyd/copyright \
        /usr/share/doc/flashpolicyd/changelog.gz /usr/share/doc/flashpolicyd/examples/flashpolicy.xml; do
        grep -qx "$f" "$tmp/files" || smoke_fail "dpkg-deb -c: no $f in the package"
    done
    outside=$(grep -v '/$' "$tmp/files" |
        grep -v '^/\(usr/\(s\?bin\|share/\(man\|doc\|lintian/overrides\)\)\|etc\|lib/systemd/system\)/' || :)
    [ -z "$outside" ] || smoke_fail "dpkg-deb -c: files outside the expected directories: $outside"
    field() { dpkg-deb -f "$deb" "$1"; }
    [ "$(field Package)" = flashpolicyd ] || smoke_fail "dpkg-deb -I: Package is $(field Package)"
    [ "$(field Version)" = "$version" ] || smoke_fail "dpkg-deb -I: Version is $(field Version), not $version"
    [ "$(field Architecture)" = "$debarch" ] || smoke_fail "dpkg-deb -I: Architecture is $(field Architecture), not $debarch"
    dpkg-deb -I "$deb" conffiles >"$tmp/conffiles"
    printf '%s\n' /etc/default/flashpolicyd /etc/flashpolicyd/policy.xml \
        /etc/init.d/flashpolicyd /etc/logrotate.d/flashpolicyd >"$tmp/conffiles.want"
    diff -u "$tmp/conffiles.want" "$tmp/conffiles" >&2 || smoke_fail "dpkg-deb -I: conffiles differ (above)"
    dpkg-deb -I "$deb" postinst | grep -q 'useradd --system' || smoke_fail "postinst creates no system user"
    dpkg-deb -I "$deb" postinst | grep -q '/run/systemd/system' || smoke_fail "postinst does not look for systemd"
    dpkg-deb -I "$deb" postrm | grep -q 'userdel flashpolicyd' || smoke_fail "postrm does not remove the user"
    dpkg-deb -I "$deb" postrm | grep -q 'rm -rf /etc/flashpolicyd' || smoke_fail "postrm does not remove /etc/flashpolicyd"
    rm -rf "$tmp/x"
    dpkg-deb -x "$deb" "$tmp/x"
    machine=$(arch_machine "$arch")
    for bin in usr/sbin/flashpolicyd usr/bin/flashpolicy-check; do
        case $(file -L "$tmp/x/$bin") in
            *"$machine"*) ;;
            *) smoke_fail "/$bin in the $debarch package is not a $machine binary: $(file -L "$tmp/x/$bin")" ;;
        esac
        if readelf -l "$tmp/x/$bin" | grep -q INTERP || readelf -d "$tmp/x/$bin" | grep -q NEEDED; then
            smoke_fail "/$bin in the package is not statically linked"
        fi
    done
    # shellcheck disable=SC2016 # a literal $ in the unit
    grep -q '^ExecStart=/usr/sbin/flashpolicyd \$FLASHPOLICYD_ARGS$' "$tmp/x/lib/systemd/system/flashpolicyd.service" ||
        smoke_fail "flashpolicyd.service does not run /usr/sbin/flashpolicyd with FLASHPOLICYD_ARGS"
    qemu=$(arch_qemu "$arch")
    # shellcheck disable=SC2086 # $qemu is empty or one word
    $qemu "$tmp/x/usr/sbin/flashpolicyd" --check-config -f "$tmp/x/etc/flashpolicyd/policy.xml" >/dev/null 2>&1 ||
        smoke_fail "the packaged /etc/flashpolicyd/policy.xml does not pass --check-config"
    smoke_say "dpkg-deb -c/-I: Architecture $debarch, $(wc -l <"$tmp/files") entries, 4 conffiles, maintainer scripts and static $machine binaries as expected"

    # --- 2. lintian ----------------------------------------------------------------------
    if ! command -v lintian >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        smoke_say "installing lintian (apt-get)"
        export DEBIAN_FRONTEND=noninteractive
        if ! apt-cache show lintian >/dev/null 2>&1; then
            apt-get update -qq || :
        fi
        apt-get install -y -qq --no-install-recommends lintian >/dev/null || :
    fi
    if command -v lintian >/dev/null 2>&1; then
        # --allow-root: CI runs as root, which lintian refuses unless told.
        lintian --allow-root --tag-display-limit 0 "$deb" >"$tmp/lintian" 2>&1 || :
        sed 's/^/  lintian: /' "$tmp/lintian"
        if grep -q '^E: ' "$tmp/lintian"; then
            smoke_fail "lintian reports errors (above)"
        fi
        smoke_say "lintian: no errors ($(grep -c '^W: ' "$tmp/lintian" || :) warnings)"
    else
        smoke_say "SKIPPED lintian: not installed, and cannot install it (needs root and apt-get)"
    fi
}
for arch in $archs; do
    deb_contents "$arch"
done
smoke_name="deb-check"

# --- 3. install, serve, purge ---------------------------------------------------------
native=$(dpkg --print-architecture)
deb=$PWD/target/dist/flashpolicyd_${version}_$native.deb
if [ ! -f "$deb" ]; then
    smoke_say "SKIPPED dpkg -i / serve / purge: no $native package (this machine's architecture) among ARCH=${ARCH:-all}"
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    smoke_say "SKIPPED dpkg -i / serve / purge: needs root"
    exit 0
fi
if dpkg-query -W -f '${Status}' flashpolicyd 2>/dev/null | grep -q 'installed'; then
    smoke_say "SKIPPED dpkg -i / serve / purge: a flashpolicyd package is already installed here"
    exit 0
fi
if getent passwd flashpolicyd >/dev/null || [ -e /etc/flashpolicyd ]; then
    smoke_say "SKIPPED dpkg -i / serve / purge: a user flashpolicyd or /etc/flashpolicyd already exists"
    exit 0
fi
# dpkg -i, waiting up to 2 minutes for a dpkg lock another installation holds.
i=0
until dpkg -i "$deb" >"$tmp/dpkg.log" 2>&1; do
    if grep -q 'lock' "$tmp/dpkg.log" && [ "$i" -lt 120 ]; then
        sleep 1
        i=$((i + 1))
        continue
    fi
    cat "$tmp/dpkg.log" >&2
    installed_here=yes
    smoke_fail "dpkg -i failed"
done
installed_here=yes
getent passwd flashpolicyd >/dev/null || smoke_fail "dpkg -i: no user flashpolicyd"
[ -f /etc/flashpolicyd/policy.xml ] || smoke_fail "dpkg -i: no /etc/flashpolicyd/policy.xml"
smoke_say "dpkg -i: installed; user $(getent passwd flashpolicyd | cut -d: -f1,3,4,6,7)"

if [ -d /run/systemd/system ]; then
    # postinst enabled and started the socket on port 843.
    systemctl is-active --quiet flashpolicyd.socket || smoke_fail "flashpolicyd.socket is not active after dpkg -i"
    smoke_port=843
    smoke_fetch /usr/bin/flashpolicy-check
    systemctl stop flashpolicyd.socket flashpolicyd.service
else
    for pid in $(pgrep -x flashpolicyd || :); do
        if [ "$(readlink "/proc/$pid/exe" 2>/dev/null || :)" = /usr/sbin/flashpolicyd ]; then
            smoke_fail "no systemd here, yet dpkg -i started /usr/sbin/flashpolicyd (pid $pid)"
        fi
    done
    set -- /etc/rc2.d/S*flashpolicyd
    [ -e "$1" ] || smoke_fail "update-rc.d did not register /etc/init.d/flashpolicyd"
    smoke_say "no systemd: nothing started, init script registered for boot"
    /etc/init.d/flashpolicyd configtest || smoke_fail "/etc/init.d/flashpolicyd configtest failed"
    # An operator's edit of the conffile: a free loopback port (843 may be in use here).
    sed -i 's|^FLASHPOLICYD_ARGS="\(.*\)"$|FLASHPOLICYD_ARGS="\1 -p 0 -b 127.0.0.1"|' /etc/default/flashpolicyd
    grep -q '^FLASHPOLICYD_ARGS=".* -p 0 -b 127.0.0.1"$' /etc/default/flashpolicyd ||
        smoke_fail "cannot edit FLASHPOLICYD_ARGS in /etc/default/flashpolicyd"
    smoke_log=/var/log/flashpolicyd.log
    # started_by_init: the pid and port of the daemon the init script just started.
    started_by_init() {
        pid=$(cat /var/run/flashpolicyd.pid)
        smoke_port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$smoke_log" | tail -n 1)
        [ -n "$smoke_port" ] || smoke_fail "the daemon wrote its pid file but no listening line"
        user=$(ps -o user= -p "$pid" | tr -d ' ')
        [ "$user" = flashpolicyd ] || smoke_fail "the daemon runs as \"$user\", not flashpolicyd"
    }
    /etc/init.d/flashpolicyd start || smoke_fail "/etc/init.d/flashpolicyd start failed: $(cat "$smoke_log")"
    started_by_init
    smoke_fetch /usr/bin/flashpolicy-check
    smoke_say "init script with /etc/default/flashpolicyd: pid $pid as flashpolicyd on port $smoke_port"
    # The same package again, while it runs (dpkg's upgrade path): the edited conffile
    # stays, and postinst restarts the daemon.
    old_pid=$pid
    dpkg -i --force-confold "$deb" </dev/null >"$tmp/dpkg.log" 2>&1 ||
        { cat "$tmp/dpkg.log" >&2; smoke_fail "dpkg -i over the installed package failed"; }
    grep -q -- '-p 0 -b 127.0.0.1"$' /etc/default/flashpolicyd || smoke_fail "the upgrade lost the edit of /etc/default/flashpolicyd"
    started_by_init
    # A policy-rc.d that forbids service actions (exit 101, as in Docker images) makes
    # invoke-rc.d leave the daemon alone: then the old one must still serve.
    policy=0
    if [ -x /usr/sbin/policy-rc.d ]; then
        /usr/sbin/policy-rc.d flashpolicyd restart >/dev/null 2>&1 || policy=$?
    fi
    if [ "$policy" = 101 ]; then
        [ "$pid" = "$old_pid" ] || smoke_fail "policy-rc.d forbids it, yet the upgrade restarted the daemon"
        smoke_fetch /usr/bin/flashpolicy-check
        smoke_say "dpkg -i again (upgrade): conffile edit kept; policy-rc.d forbids service actions here (exit 101), so the old daemon (pid $pid) was left serving"
        stops=1
    else
        [ "$pid" != "$old_pid" ] || smoke_fail "the upgrade did not restart the daemon (pid $pid)"
        smoke_fetch /usr/bin/flashpolicy-check
        smoke_say "dpkg -i again (upgrade): conffile edit kept, daemon restarted (pid $old_pid -> $pid)"
        stops=2
    fi
    /etc/init.d/flashpolicyd stop || smoke_fail "/etc/init.d/flashpolicyd stop failed"
    [ "$(grep -c 'INFO stopped: served=' "$smoke_log")" = "$stops" ] ||
        smoke_fail "not $stops \`stopped:\` line(s) in $smoke_log"
    ! /etc/init.d/flashpolicyd status >/dev/null 2>&1 || smoke_fail "the daemon still runs after stop"
    smoke_say "init script: stopped cleanly"
fi

dpkg --purge flashpolicyd >"$tmp/dpkg.log" 2>&1 || { cat "$tmp/dpkg.log" >&2; smoke_fail "dpkg --purge failed"; }
installed_here=no
for f in /usr/sbin/flashpolicyd /etc/flashpolicyd /etc/default/flashpolicyd /etc/init.d/flashpolicyd \
    /var/log/flashpolicyd.log /var/run/flashpolicyd.pid /lib/systemd/system/flashpolicyd.service; do
    [ ! -e "$f" ] || smoke_fail "dpkg --purge left $f"
done
set -- /etc/rc?.d/*flashpolicyd
[ ! -e "$1" ] || smoke_fail "dpkg --purge left boot links: $*"
! getent passwd flashpolicyd >/dev/null || smoke_fail "dpkg --purge left the user flashpolicyd"
! getent group flashpolicyd >/dev/null || smoke_fail "dpkg --purge left the group flashpolicyd"
smoke_say "dpkg --purge: files, user, group, /etc/flashpolicyd, log and boot links gone"
smoke_say "ok"
