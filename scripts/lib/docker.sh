# shellcheck shell=sh
# Sourced by the scripts that need a real Docker engine (scripts/systemd-check.sh,
# scripts/image-check.sh). docker_ready installs Debian's docker.io when the engine is
# missing and starts dockerd when none answers (without iptables or a bridge: the
# containers use the host's network), waiting for it with a deadline. It returns 1 and
# sets docker_why when no engine can be had, so that the caller can print
# `SKIPPED name: why` (outside CI) or fail (in CI).

docker_why=""

# docker_ready: 0 when `docker info` answers, 1 (and docker_why) when it cannot.
docker_ready() {
    if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker >/dev/null 2>&1; then
        if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
            docker_why="no Docker engine, and no apt-get as root to install docker.io"
            return 1
        fi
        echo "docker: installing Debian's docker.io" >&2
        if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker.io >/tmp/docker-apt.log 2>&1; then
            apt-get update -q >/tmp/docker-apt.log 2>&1 || :
            if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker.io >>/tmp/docker-apt.log 2>&1; then
                docker_why="apt-get install docker.io failed (/tmp/docker-apt.log)"
                return 1
            fi
        fi
    fi
    if docker info >/dev/null 2>&1; then
        return 0
    fi
    if [ "$(id -u)" -ne 0 ]; then
        docker_why="no Docker engine answers, and only root may start dockerd"
        return 1
    fi
    echo "docker: starting dockerd (--iptables=false --bridge=none; log /tmp/dockerd.log)" >&2
    # setsid: the engine outlives this script (later checks reuse it) without holding
    # its terminal or its standard streams.
    setsid dockerd --iptables=false --bridge=none </dev/null >/tmp/dockerd.log 2>&1 &
    i=0
    while [ "$i" -lt 300 ]; do
        docker info >/dev/null 2>&1 && return 0
        sleep 0.1
        i=$((i + 1))
    done
    docker_why="dockerd did not answer within 30 s (/tmp/dockerd.log: $(tail -n 1 /tmp/dockerd.log 2>/dev/null))"
    return 1
}

# docker_skip_or_fail NAME: no engine: outside CI print `SKIPPED NAME: why` and exit 0;
# in CI (CI set) the check must run, so fail.
docker_skip_or_fail() {
    if [ -n "${CI:-}" ]; then
        echo "$1: FAILED: CI must run this check, but $docker_why" >&2
        exit 1
    fi
    echo "SKIPPED $1: $docker_why"
    exit 0
}
