#!/bin/sh
# Checks the container images against a real Docker engine (make image-check; .ci/run):
#  - amd64 and arm64 images say so in their configuration, are under 2 MB, run as
#    65534:65534 and hold only the daemon, the checker, the licences and the example;
#  - the native image, run --read-only --cap-drop ALL in its own network namespace
#    (--network none), binds 843 as uid 65534, serves the embedded default (with its
#    warning) or the policy mounted at /etc/flashpolicyd/policy.xml, turns healthy
#    through its exec-form HEALTHCHECK, and stops on `docker stop` with exit status 0
#    (so by SIGTERM, not by the SIGKILL at the end of the grace period);
#  - a bad mounted policy: exit status 2, file and line in `docker logs`;
#  - --network host, as uid 65534 on a high port on 127.0.0.1 only (843 on the host
#    is not ours to take: other services may hold it), serving a host client;
#  - the arm64 binaries from the image run under qemu-user (when binfmt is not set up,
#    qemu-aarch64 is called directly).
# The policy is fetched from this machine's loopback only: for the --network none
# container by entering its network namespace with nsenter (needs root, as Docker here
# does). Without a Docker engine: `SKIPPED image-check: why` (in CI: a failure).
# Usage: scripts/image-check.sh  (IMAGE_CHECK_SKIP_BUILD=1: use the images make image built)
set -eu
cd "$(dirname "$0")/.."
. scripts/lib/docker.sh

docker_ready || docker_skip_or_fail image-check
if [ "$(id -u)" -ne 0 ] || ! command -v nsenter >/dev/null 2>&1; then
    why="needs root and nsenter to reach the container's loopback"
    [ -n "${CI:-}" ] && { echo "image-check: FAILED: $why" >&2; exit 1; }
    echo "SKIPPED image-check: $why"
    exit 0
fi

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
case $(uname -m) in
    x86_64) native=amd64 ;;
    aarch64) native=arm64 ;;
    *) echo "image-check: FAILED: no image for this machine's $(uname -m)" >&2; exit 1 ;;
esac
if [ -z "${IMAGE_CHECK_SKIP_BUILD:-}" ]; then
    CARGO="${CARGO:-cargo}" sh scripts/image.sh
fi

started=$(date +%s)
tmp=$(mktemp -d)
names=""
cleanup() {
    for n in $names; do docker rm -f "$n" >/dev/null 2>&1 || :; done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

fail() {
    echo "image-check: FAILED: $*" >&2
    for n in $names; do
        if docker inspect "$n" >/dev/null 2>&1; then
            echo "--- docker logs $n:" >&2
            docker logs "$n" >&2 2>&1 || :
        fi
    done
    exit 1
}

# container SUFFIX: sets c to a container name of this run, removed at exit. (Not
# $(...): the list of names must grow in this shell, not in a subshell.)
container() {
    c=image-check-$$-$1
    names="$names $c"
}

# wait_until SECONDS WHAT COMMAND...: polls COMMAND every 0.1 s until it succeeds, or
# fails naming WHAT once SECONDS have passed.
wait_until() {
    limit=$(($1 * 10))
    what=$2
    shift 2
    i=0
    until "$@"; do
        i=$((i + 1))
        [ "$i" -lt "$limit" ] || fail "$what"
        sleep 0.1
    done
}

state() { docker inspect -f "$2" "$1" 2>/dev/null; }
is_running() { [ "$(state "$1" '{{.State.Status}}')" = running ]; }
has_exited() { [ "$(state "$1" '{{.State.Status}}')" = exited ]; }
is_healthy() { [ "$(state "$1" '{{.State.Health.Status}}')" = healthy ]; }
logs_say() { docker logs "$1" 2>&1 | grep -q -- "$2"; }

# fetch OUT PORT [NETNS_PID]: one policy request to 127.0.0.1:PORT from this machine
# (inside the network namespace of process NETNS_PID when given), the reply into OUT.
fetch() {
    # shellcheck disable=SC2016 # $0 and $1 belong to the inner bash
    request='exec 3<>"/dev/tcp/127.0.0.1/$0" && printf "<policy-file-request/>\0" >&3 && cat <&3'
    if [ $# -eq 3 ]; then
        timeout 5 nsenter --net="/proc/$3/ns/net" bash -c "$request" "$2" >"$1"
    else
        timeout 5 bash -c "$request" "$2" >"$1"
    fi || fail "no policy from 127.0.0.1:$2${3:+ in the network namespace of pid $3}"
}

# ends_with_nul FILE
ends_with_nul() { [ "$(tail -c 1 "$1" | od -An -tx1 | tr -d ' \n')" = 00 ]; }

# stop_cleanly NAME: docker stop, and exit status 0 (SIGTERM handled, not killed).
stop_cleanly() {
    t0=$(date +%s.%N)
    docker stop "$1" >/dev/null
    t1=$(date +%s.%N)
    code=$(state "$1" '{{.State.ExitCode}}')
    [ "$code" = 0 ] || fail "$1: exit status $code after docker stop, not 0"
    logs_say "$1" "stopped:" || fail "$1: no \"stopped:\" line in docker logs"
    echo "image-check: $1: docker stop took $(echo "$t0 $t1" | awk '{printf "%.2f", $2 - $1}') s, exit status 0"
}

# 1. Both images: architecture, size, user, contents.
expected=$(sort <<-EOF_
	usr/bin/flashpolicy-check
	usr/sbin/flashpolicyd
	usr/share/doc/flashpolicyd/LICENSE
	usr/share/doc/flashpolicyd/LICENSE-APACHE
	usr/share/doc/flashpolicyd/LICENSE-MIT
	usr/share/doc/flashpolicyd/examples/flashpolicy.xml
	EOF_
)
for arch in amd64 arm64; do
    img=flashpolicyd:$version-$arch
    got=$(docker image inspect -f '{{.Os}}/{{.Architecture}} {{.Config.User}} {{.Size}} {{range $p, $_ := .Config.ExposedPorts}}{{$p}}{{end}} {{index .Config.Healthcheck.Test 0}}' "$img") ||
        fail "no image $img (make image)"
    # shellcheck disable=SC2086 # five words
    set -- $got
    [ "$1" = "linux/$arch" ] || fail "$img: its configuration says $1, not linux/$arch"
    [ "$2" = 65534:65534 ] || fail "$img: runs as \"$2\", not 65534:65534"
    [ "$3" -lt 2000000 ] || fail "$img: $3 bytes, not under 2 MB"
    [ "$4" = 843/tcp ] || fail "$img: exposes \"$4\", not 843/tcp"
    # CMD, not CMD-SHELL: there is no shell in the image.
    [ "$5" = CMD ] || fail "$img: its health check is \"$5\", not the exec form CMD"
    container "files-$arch"
    docker create --name "$c" "$img" >/dev/null 2>&1 || fail "docker create $img"
    # Every file and symlink (a shell would be one); Docker adds /.dockerenv and the
    # files it mounts over to every container.
    docker export "$c" | tar -tvf - | awk '$1 ~ /^[-lhbcps]/ { print $6 }' |
        grep -v -x -e '.dockerenv' -e 'etc/hosts' -e 'etc/hostname' -e 'etc/resolv.conf' \
            -e 'etc/mtab' -e 'dev/.*' | sort >"$tmp/files"
    printf '%s\n' "$expected" >"$tmp/expected"
    diff -u "$tmp/expected" "$tmp/files" >&2 || fail "$img holds other files than expected (diff above)"
    if [ "$arch" = arm64 ]; then
        docker cp "$c:/usr/sbin/flashpolicyd" "$tmp/flashpolicyd-arm64"
        docker cp "$c:/usr/bin/flashpolicy-check" "$tmp/flashpolicy-check-arm64"
    fi
    echo "image-check: $img: linux/$arch, user 65534:65534, $3 bytes, only the expected files"
done

img=flashpolicyd:$version-$native
# Every container: read-only root, no capability at all. In its own network namespace,
# a health check every half second instead of every 30 s, so that "healthy" comes quickly.
run="docker run -d --read-only --cap-drop ALL"
own="--network none --health-interval 500ms"

# 2. Own network namespace, nothing mounted: the embedded default, with its warning.
container default
$run --name "$c" $own "$img" >/dev/null || fail "docker run $img"
wait_until 10 "$c: never said it was listening on 843" logs_say "$c" "listening on 0.0.0.0:843"
logs_say "$c" "WARN serving the embedded allow-all policy" || fail "$c: no warning about the embedded default"
pid=$(state "$c" '{{.State.Pid}}')
fetch "$tmp/default.reply" 843 "$pid"
grep -q 'allow-access-from domain="\*" to-ports="\*"' "$tmp/default.reply" ||
    fail "$c: the reply is not the allow-all policy: $(cat "$tmp/default.reply")"
ends_with_nul "$tmp/default.reply" || fail "$c: the reply does not end with a NUL byte"
wait_until 20 "$c: not healthy within 20 s" is_healthy "$c"
echo "image-check: $c: uid 65534 bound 843 read-only without capabilities, served the default, healthy"
stop_cleanly "$c"

# 3. The example policy mounted read-only where the image looks for one.
container mounted
$run --name "$c" $own \
    -v "$PWD/scripts/flashpolicy.xml:/etc/flashpolicyd/policy.xml:ro" "$img" >/dev/null ||
    fail "docker run $img with a policy mounted"
wait_until 10 "$c: never said it was listening on 843" logs_say "$c" "listening on 0.0.0.0:843"
logs_say "$c" "WARN serving the embedded" && fail "$c: warns about the embedded default with a policy mounted"
fetch "$tmp/mounted.reply" 843 "$(state "$c" '{{.State.Pid}}')"
grep -q 'allow-access-from domain="\*\.example\.com" to-ports="843,8080"' "$tmp/mounted.reply" ||
    fail "$c: the reply is not the mounted policy: $(cat "$tmp/mounted.reply")"
wait_until 20 "$c: not healthy within 20 s" is_healthy "$c"
echo "image-check: $c: served the mounted policy, healthy"
stop_cleanly "$c"

# 4. A bad policy mounted: exit status 2, and the file and line in docker logs.
printf '<?xml version="1.0"?>\n<cross-domain-policy>\n  <allow-access-from domain="*" to-ports="99999"/>\n</cross-domain-policy>\n' \
    >"$tmp/bad.xml"
chmod 0644 "$tmp/bad.xml"
chmod 0755 "$tmp"
container bad
$run --name "$c" $own -v "$tmp/bad.xml:/etc/flashpolicyd/policy.xml:ro" "$img" >/dev/null ||
    fail "docker run $img with a bad policy"
wait_until 10 "$c: still running with a bad policy" has_exited "$c"
code=$(state "$c" '{{.State.ExitCode}}')
[ "$code" = 2 ] || fail "$c: exit status $code with a bad policy, not 2"
logs_say "$c" "/etc/flashpolicyd/policy.xml:3: " || fail "$c: docker logs do not name the file and line 3"
echo "image-check: $c: exit status 2, \"$(docker logs "$c" 2>&1 | tail -n 1)\""

# 5. --network host: the host's ports, so a high one on 127.0.0.1 (the host's sysctl
# keeps uid 65534 off 843 there, and 843 may be taken); another one if it is in use.
tries=0
while :; do
    tries=$((tries + 1))
    port=$(awk -v s="$$$tries" 'BEGIN { srand(s); print 20000 + int(rand() * 40000) }')
    container "host-$tries"
    $run --name "$c" --network host --no-healthcheck "$img" \
        --file-if-exists /etc/flashpolicyd/policy.xml --bind 127.0.0.1 --port "$port" >/dev/null ||
        fail "docker run $img --network host"
    listening_or_exited() { logs_say "$c" "listening on 127.0.0.1:$port" || has_exited "$c"; }
    wait_until 10 "$c: neither listening nor stopped" listening_or_exited
    is_running "$c" && break
    logs_say "$c" "address already in use" && [ "$tries" -lt 5 ] || fail "$c: did not start"
done
fetch "$tmp/host.reply" "$port"
grep -q 'allow-access-from domain="\*" to-ports="\*"' "$tmp/host.reply" ||
    fail "$c: the reply is not the allow-all policy: $(cat "$tmp/host.reply")"
echo "image-check: $c: --network host, uid 65534 on 127.0.0.1:$port, served a host client"
stop_cleanly "$c"

# 6. The arm64 binaries from the image, under qemu-user.
if ! command -v qemu-aarch64 >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q qemu-user >"$tmp/apt.log" 2>&1 || :
fi
if command -v qemu-aarch64 >/dev/null 2>&1; then
    got=$(qemu-aarch64 "$tmp/flashpolicyd-arm64" --version) || fail "arm64 flashpolicyd --version under qemu-aarch64"
    [ "$got" = "flashpolicyd $version" ] || fail "arm64 flashpolicyd --version said \"$got\""
    qemu-aarch64 "$tmp/flashpolicyd-arm64" --check-config -f scripts/flashpolicy.xml >"$tmp/arm64.out" 2>&1 ||
        fail "arm64 flashpolicyd --check-config: $(cat "$tmp/arm64.out")"
    out=$(qemu-aarch64 "$tmp/flashpolicy-check-arm64" --file scripts/flashpolicy.xml) ||
        fail "arm64 flashpolicy-check --file: $out"
    echo "image-check: arm64 binaries from the image run under qemu-aarch64 ($got; ${out%%|*})"
elif [ -n "${CI:-}" ]; then
    fail "no qemu-aarch64 to run the arm64 binaries (apt-get install qemu-user failed)"
else
    echo "SKIPPED image-check arm64 run: no qemu-aarch64 (apt-get install qemu-user)"
fi

echo "image-check: OK in $(($(date +%s) - started)) s"
