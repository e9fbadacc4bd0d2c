#!/bin/sh
# The .deb under a real systemd (run by .ci/run after make deb, and by
# `make test-systemd`): Debian 12's systemd boots as PID 1 in a container that shares
# this machine's network, and the package's own units (made from scripts/systemd by
# make deb) and scripts/systemd/flashpolicyd-standalone.service run there:
#   1. dpkg -i: the socket listens on 843 and the first connection starts the daemon,
#      which serves on 127.0.0.1 and ::1 as the user flashpolicyd;
#   2. systemctl stop flashpolicyd: it stops cleanly, the socket still listens, and a
#      new connection starts it again;
#   3. systemctl restart flashpolicyd: a new daemon on the same socket serves;
#   4. an edit of /etc/flashpolicyd/policy.xml, then systemctl reload: the edit is
#      served; an invalid edit: systemctl reload fails and the old policy is served;
#   5. the standalone unit (socket stopped): the daemon binds 843 itself, holding only
#      CAP_NET_BIND_SERVICE, serves, and stops cleanly; then the socket again;
#   6. dpkg -i of the same package with a higher version, over the running install:
#      the edit is kept and the new binary serves;
#   7. dpkg --purge: no unit, user or port left.
# After each step `systemctl --failed` is empty, the journal holds no error and no
# warning about flashpolicyd, and the daemon logged no ERROR or WARN line.
# `systemd-analyze security` of both services is printed.
#
# The image (debootstrap of bookworm, minbase plus systemd, imported into Docker) is
# built once and kept as $image; set SYSTEMD_CHECK_REBUILD=1 to build it again.
# Without a Docker engine, or not as root, or with port 843 in use, it prints
# `SKIPPED systemd-check: why` and exits 0, except in CI (CI set), where it fails.
# Usage: scripts/systemd-check.sh
set -eu
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/docker.sh
. scripts/lib/docker.sh

# Bump the number when the recipe in build_image changes.
image=flashpolicyd-systemd-check:bookworm-1
container=flashpolicyd-systemd-check-$$
tmp=""
rootfs=""
started=no

say() {
    echo "systemd-check: $*"
}

skip() {
    docker_why=$1
    docker_skip_or_fail systemd-check
}

# fail TEXT: says why, with the units' state and journal when the container runs.
fail() {
    echo "systemd-check: FAILED: $*" >&2
    if [ "$started" = yes ]; then
        echo "--- systemctl status flashpolicyd*:" >&2
        docker exec "$container" systemctl --no-pager status 'flashpolicyd*' >&2 2>&1 || :
        echo "--- journal (last 60 lines):" >&2
        docker exec "$container" journalctl --no-pager -n 60 >&2 2>&1 || :
    fi
    exit 1
}

cleanup() {
    if [ "$started" = yes ]; then
        timeout 60 docker rm -f "$container" >/dev/null 2>&1 || :
    fi
    [ -z "$rootfs" ] || rm -rf "$rootfs"
    [ -z "$tmp" ] || rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# in_c CMD...: runs CMD in the container, for at most 60 s.
in_c() {
    timeout 60 docker exec "$container" "$@"
}

# put PATH <FILE: writes FILE to PATH in the container.
put() {
    timeout 60 docker exec -i "$container" sh -c 'cat >"$1"' sh "$1"
}

# wait_until SECS WHY CMD...: runs CMD every 0.2 s until it succeeds; fails after SECS.
wait_until() {
    secs=$1
    why=$2
    shift 2
    i=0
    until "$@" >/dev/null 2>&1; do
        i=$((i + 1))
        [ "$i" -lt $((secs * 5)) ] || fail "$why (waited $secs s)"
        sleep 0.2
    done
}

# apt_install PACKAGE...: apt-get install; when that fails, apt-get update and again.
apt_install() {
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q --no-install-recommends "$@" >"$tmp/apt.log" 2>&1 ||
        {
            apt-get update -q >>"$tmp/apt.log" 2>&1 || :
            apt-get install -y -q --no-install-recommends "$@" >>"$tmp/apt.log" 2>&1
        } ||
        fail "apt-get install $* failed: $(tail -n 3 "$tmp/apt.log")"
}

[ "$(id -u)" = 0 ] || skip "needs root (debootstrap, docker, dpkg)"
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
deb=$PWD/target/dist/flashpolicyd_${version}_amd64.deb
[ -f "$deb" ] || fail "$deb is missing: run \`make deb\` first"
docker_ready || skip "$docker_why"
tmp=$(mktemp -d)
command -v ss >/dev/null 2>&1 || apt_install iproute2
# The container shares this machine's network: its port 843 is ours.
if ss -Hltn 'sport = :843' | grep -q .; then
    skip "port 843 is in use on this machine: $(ss -Hltnp 'sport = :843' | head -n 1)"
fi

# --- the image -----------------------------------------------------------------------
# debian_mirror: the Debian archive apt uses here (deb822 or one-line sources), so
# that debootstrap goes where this machine may reach; deb.debian.org otherwise.
debian_mirror() {
    set -- /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources
    for f; do
        [ -f "$f" ] || continue
        sed -n -e 's/^URIs:[[:space:]]*//p' -e 's/^deb[[:space:]]\{1,\}\(\[[^]]*\][[:space:]]*\)\{0,1\}\([^[:space:]]*\).*/\2/p' "$f"
    done | tr ' ' '\n' | grep -m 1 '^https\{0,1\}://.*/debian/\{0,1\}$' || echo http://deb.debian.org/debian
}


build_image() {
    t0=$(date +%s)
    command -v debootstrap >/dev/null 2>&1 || apt_install debootstrap
    [ -f /usr/share/keyrings/debian-archive-keyring.gpg ] || apt_install debian-archive-keyring
    mirror=$(debian_mirror)
    say "building $image: debootstrap bookworm from $mirror (about a minute)"
    rootfs=$(mktemp -d /var/tmp/systemd-check.XXXXXX)
    timeout 900 debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus \
        bookworm "$rootfs" "$mirror" >"$tmp/debootstrap.log" 2>&1 ||
        fail "debootstrap failed: $(tail -n 5 "$tmp/debootstrap.log")"
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    timeout 300 sh -c 'tar -C "$1" -c . | docker import - "$2"' sh "$rootfs" "$image" >/dev/null ||
        fail "docker import of the debootstrap tree failed"
    rm -rf "$rootfs"
    rootfs=""
    say "built $image in $(($(date +%s) - t0)) s"
}

if [ -n "${SYSTEMD_CHECK_REBUILD:-}" ] || ! docker image inspect "$image" >/dev/null 2>&1; then
    build_image
else
    say "reusing the image $image (SYSTEMD_CHECK_REBUILD=1 builds it again)"
fi

# --- boot ----------------------------------------------------------------------------
t0=$(date +%s)
timeout 120 docker run -d --name "$container" --network host \
    --cap-add ALL --cap-drop SYS_RESOURCE \
    --security-opt seccomp=unconfined --security-opt apparmor=unconfined \
    --tmpfs /run --tmpfs /run/lock --tmpfs /tmp \
    -v /sys/fs/cgroup:/sys/fs/cgroup:rw -e container=docker \
    "$image" /lib/systemd/systemd >/dev/null || fail "docker run failed"
started=yes
booted() {
    state=$(docker exec "$container" systemctl is-system-running 2>/dev/null) || :
    case $state in running | degraded) return 0 ;; esac
    return 1
}
wait_until 60 "systemd did not finish booting" booted
state=$(in_c systemctl is-system-running) || :
[ "$state" = running ] ||
    fail "systemd booted $state: $(in_c systemctl --failed --no-legend --plain | tr '\n' ' ')"
say "systemd $(in_c systemctl --version | head -n 1 | cut -d' ' -f2) booted as PID 1 in $(($(date +%s) - t0)) s"
# Journal cursors: each check sees only what came after the previous one.
in_c journalctl -q --no-pager -p err --cursor-file=/root/cursor.err >"$tmp/boot.err" || :
in_c journalctl -q --no-pager -p warning --cursor-file=/root/cursor.warn >/dev/null || :
in_c journalctl -q --no-pager --cursor-file=/root/cursor.all >/dev/null || :
[ ! -s "$tmp/boot.err" ] || { say "errors logged at boot (not ours):"; sed 's/^/  /' "$tmp/boot.err"; }

# clean STEP [EXPECTED]: nothing failed and nothing went wrong in the journal since the
# last step, except lines matching the extended regular expression EXPECTED.
clean() {
    expected=${2:-'^$'}
    in_c journalctl --sync >/dev/null 2>&1 || :
    failed=$(in_c systemctl --failed --no-legend --plain)
    [ -z "$failed" ] || fail "after $1: systemctl --failed: $failed"
    in_c journalctl -q --no-pager -p err --cursor-file=/root/cursor.err | grep -v -E "$expected" >"$tmp/err" || :
    [ ! -s "$tmp/err" ] || fail "after $1: errors in the journal: $(cat "$tmp/err")"
    in_c journalctl -q --no-pager -p warning --cursor-file=/root/cursor.warn | grep -v -E "$expected" >"$tmp/warn" || :
    ! grep -i flashpolicyd "$tmp/warn" >&2 || fail "after $1: warnings about flashpolicyd in the journal (above)"
    # The daemon logs to stderr, which journald files at priority info.
    in_c journalctl -q --no-pager --cursor-file=/root/cursor.all | grep -v -E "$expected" >"$tmp/all" || :
    ! grep -E ' flashpolicyd\[[0-9]+\]: [^ ]+ (ERROR|WARN) ' "$tmp/all" >&2 ||
        fail "after $1: the daemon logged errors or warnings (above)"
    say "$1: ok (no failed unit, journal clean)"
}

# fetch ADDR: the installed checker gets a valid policy from ADDR port 843.
fetch() {
    out=$(in_c flashpolicy-check -H "$1" -p 843 2>&1) || fail "flashpolicy-check -H $1 -p 843: $out"
    case $out in
        "FLASHPOLICY OK"*) ;;
        *) fail "flashpolicy-check -H $1 -p 843: $out" ;;
    esac
}

# serves_domain DOMAIN: the policy served on 127.0.0.1:843 names DOMAIN.
serves_domain() {
    in_c flashpolicy-check -v -H 127.0.0.1 -p 843 | grep -q "domain=\"$1\""
}

prop() {
    in_c systemctl show -P "$2" "$1"
}

# daemon_pid UNIT: the unit's main pid; fails when it is not running as USER (if given).
daemon_pid() {
    pid=$(prop "$1" MainPID)
    [ "$pid" != 0 ] || fail "$1 is not running"
    if [ -n "${2:-}" ]; then
        user=$(in_c stat -c %U "/proc/$pid")
        [ "$user" = "$2" ] || fail "$1 runs as \"$user\", not $2"
    fi
    echo "$pid"
}

# stopped_cleanly UNIT: inactive, result success, the daemon exited 0.
stopped_cleanly() {
    [ "$(prop "$1" ActiveState)" = inactive ] || fail "$1 is $(prop "$1" ActiveState) after stop"
    [ "$(prop "$1" Result)" = success ] || fail "$1: result $(prop "$1" Result) after stop"
    [ "$(prop "$1" ExecMainStatus)" = 0 ] || fail "$1: the daemon exited $(prop "$1" ExecMainStatus)"
}

# listening_843: something listens on port 843 (the container shares our network, so
# this machine's ss sees its sockets; nothing of ours listened there before).
listening_843() {
    ss -Hltn 'sport = :843' | grep -q .
}

socket_listens() {
    [ "$(prop flashpolicyd.socket ActiveState)" = active ] || fail "flashpolicyd.socket is $(prop flashpolicyd.socket ActiveState) after $1"
    listening_843 || fail "nothing listens on 843 after $1"
}

# --- 1. dpkg -i, socket activation ---------------------------------------------------
put /root/flashpolicyd.deb <"$deb"
in_c dpkg -i /root/flashpolicyd.deb >"$tmp/dpkg.log" 2>&1 || fail "dpkg -i failed: $(cat "$tmp/dpkg.log")"
socket_listens "dpkg -i"
[ "$(prop flashpolicyd.service ActiveState)" = inactive ] || fail "dpkg -i started the service before any connection"
fetch 127.0.0.1
pid=$(daemon_pid flashpolicyd.service flashpolicyd)
fetch ::1
say "dpkg -i: the socket listens; the first connection started pid $pid as flashpolicyd; served on 127.0.0.1 and ::1"
clean "dpkg -i + activation"

# --- 2. stop, then reactivation ------------------------------------------------------
# (systemctl warns that the socket can still activate it: that is the point.)
in_c systemctl stop flashpolicyd.service 2>"$tmp/stop.err" || fail "systemctl stop flashpolicyd failed: $(cat "$tmp/stop.err")"
stopped_cleanly flashpolicyd.service
socket_listens "systemctl stop flashpolicyd"
fetch 127.0.0.1
fetch ::1
new=$(daemon_pid flashpolicyd.service flashpolicyd)
[ "$new" != "$pid" ] || fail "the daemon after stop has the old pid $pid"
say "systemctl stop: stopped cleanly; a new connection started pid $new"
pid=$new
clean "stop + reactivation"

# --- 3. restart ----------------------------------------------------------------------
in_c systemctl restart flashpolicyd.service || fail "systemctl restart flashpolicyd failed"
new=$(daemon_pid flashpolicyd.service flashpolicyd)
[ "$new" != "$pid" ] || fail "systemctl restart kept pid $pid"
socket_listens "systemctl restart"
fetch 127.0.0.1
fetch ::1
say "systemctl restart: pid $pid -> $new, serving"
pid=$new
clean "restart"

# --- 4. a policy edit and reload -----------------------------------------------------
in_c sed -i 's|^</cross-domain-policy>|  <allow-access-from domain="reload.example.org" to-ports="843"/>\n&|' \
    /etc/flashpolicyd/policy.xml
in_c systemctl reload flashpolicyd.service || fail "systemctl reload flashpolicyd failed"
wait_until 15 "the edited policy was not served after systemctl reload" serves_domain reload.example.org
[ "$(daemon_pid flashpolicyd.service)" = "$pid" ] || fail "systemctl reload restarted the daemon"
say "systemctl reload: the edited policy is served by the same daemon (pid $pid)"
clean "reload"

# An invalid edit: systemctl reload fails, the daemon refuses the file and keeps
# serving the old policy; a valid file after it is served.
refused_count() {
    in_c journalctl -q --no-pager -u flashpolicyd.service | grep -c 'policy reload refused' || :
}
refused_more() {
    [ "$(refused_count)" -gt "$1" ]
}
refused=$(refused_count)
in_c sed 's|reload\.example\.org|fixed.example.org|' /etc/flashpolicyd/policy.xml >"$tmp/fixed.xml"
in_c sh -c 'echo "<cross-domain-policy>" >/etc/flashpolicyd/policy.xml'
! in_c systemctl reload flashpolicyd.service 2>/dev/null || fail "systemctl reload accepted an invalid policy"
wait_until 15 "the daemon did not log its refusal of the invalid policy" refused_more "$refused"
serves_domain reload.example.org || fail "the daemon stopped serving the old policy after an invalid edit"
put /etc/flashpolicyd/policy.xml <"$tmp/fixed.xml"
in_c systemctl reload flashpolicyd.service || fail "systemctl reload of the fixed policy failed"
wait_until 15 "the fixed policy was not served" serves_domain fixed.example.org
[ "$(daemon_pid flashpolicyd.service)" = "$pid" ] || fail "the invalid edit restarted the daemon"
say "an invalid edit: systemctl reload failed and the daemon kept the old policy; the fixed file is served"
clean "invalid edit" 'Reload failed for flashpolicyd|flashpolicyd\.service: Control process exited|invalid policy /etc/flashpolicyd/policy\.xml|policy reload refused'

# --- 5. the standalone unit ----------------------------------------------------------
in_c systemctl stop flashpolicyd.socket flashpolicyd.service
listening_843 && fail "843 still listens after stopping the socket"
# As its comment tells an operator: the unit as it is, its paths pointing at the
# package's binary and policy.
put /etc/systemd/system/flashpolicyd-standalone.service <scripts/systemd/flashpolicyd-standalone.service
in_c sh -c 'mkdir -p /usr/local/sbin && ln -sf /usr/sbin/flashpolicyd /usr/local/sbin/flashpolicyd &&
    cp /etc/flashpolicyd/policy.xml /etc/flashpolicy.xml && systemctl daemon-reload'
in_c systemctl start flashpolicyd-standalone.service || fail "systemctl start flashpolicyd-standalone failed"
wait_until 10 "the standalone daemon did not listen on 843" listening_843
spid=$(daemon_pid flashpolicyd-standalone.service)
# A dynamic user: no name without libnss-systemd, which minbase lacks.
suid=$(in_c stat -c %u "/proc/$spid")
[ "$suid" != 0 ] || fail "the standalone daemon runs as root"
capeff=$(in_c sed -n 's/^CapEff:[[:space:]]*//p' "/proc/$spid/status")
[ "$capeff" = 0000000000000400 ] || fail "the standalone daemon's effective capabilities are $capeff, not CAP_NET_BIND_SERVICE alone (0400)"
fetch 127.0.0.1
fetch ::1
in_c systemctl stop flashpolicyd-standalone.service
stopped_cleanly flashpolicyd-standalone.service
say "standalone unit: pid $spid as uid $suid (CapEff $capeff) bound 843 itself, served, stopped cleanly"
cp scripts/systemd/flashpolicyd-standalone.service "$tmp/standalone.service"
in_c systemd-analyze security --no-pager flashpolicyd-standalone.service >"$tmp/standalone.security" 2>&1 || :
in_c sh -c 'rm /etc/systemd/system/flashpolicyd-standalone.service /usr/local/sbin/flashpolicyd /etc/flashpolicy.xml &&
    systemctl daemon-reload && systemctl start flashpolicyd.socket'
socket_listens "the standalone unit"
fetch 127.0.0.1
clean "standalone unit"

# --- 6. upgrade over the running install ---------------------------------------------
pid=$(daemon_pid flashpolicyd.service flashpolicyd)
next=$version+systemdcheck1
mkdir "$tmp/deb"
dpkg-deb -R "$deb" "$tmp/deb/root"
sed -i "s/^Version: .*/Version: $next/" "$tmp/deb/root/DEBIAN/control"
dpkg-deb --root-owner-group -Zxz --build "$tmp/deb/root" "$tmp/deb/next.deb" >/dev/null
put /root/next.deb <"$tmp/deb/next.deb"
in_c dpkg -i --force-confold /root/next.deb >"$tmp/dpkg.log" 2>&1 </dev/null ||
    fail "dpkg -i of $next over $version failed: $(cat "$tmp/dpkg.log")"
[ "$(in_c dpkg-query -W -f '${Version}' flashpolicyd)" = "$next" ] || fail "the upgrade did not install $next"
socket_listens "the upgrade"
fetch 127.0.0.1
fetch ::1
new=$(daemon_pid flashpolicyd.service flashpolicyd)
[ "$new" != "$pid" ] || fail "the upgrade left the old daemon (pid $pid) serving"
exe=$(in_c readlink "/proc/$new/exe")
[ "$exe" = /usr/sbin/flashpolicyd ] || fail "the daemon after the upgrade runs $exe"
serves_domain fixed.example.org || fail "the upgrade lost the edit of /etc/flashpolicyd/policy.xml"
say "dpkg -i $next over $version while serving: edit kept, pid $pid -> $new runs the new binary"
clean "upgrade"

# --- systemd-analyze security --------------------------------------------------------
in_c systemd-analyze security --no-pager flashpolicyd.service >"$tmp/security" 2>&1 || :
score() {
    sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p' "$1"
}
say "systemd-analyze security flashpolicyd.service: $(score "$tmp/security") (socket activation, the package's unit)"
say "systemd-analyze security flashpolicyd-standalone.service: $(score "$tmp/standalone.security")"
grep '^✗' "$tmp/security" | sed 's/^/  flashpolicyd.service: /' || :

# --- 7. purge ------------------------------------------------------------------------
in_c dpkg --purge flashpolicyd >"$tmp/dpkg.log" 2>&1 || fail "dpkg --purge failed: $(cat "$tmp/dpkg.log")"
listening_843 && fail "843 still listens after dpkg --purge"
units=$(in_c systemctl list-units --all --no-legend --plain 'flashpolicyd*')
[ -z "$units" ] || fail "units left after dpkg --purge: $units"
in_c getent passwd flashpolicyd >/dev/null && fail "dpkg --purge left the user flashpolicyd"
clean "dpkg --purge"
say "ok"
