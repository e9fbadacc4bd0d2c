# shellcheck shell=bash disable=SC2154 # server_bin and tmp come from the sourcing script
# Sourced by scripts/bench.sh and scripts/soak.sh: start and stop the flashpolicyd under
# test. Expects $server_bin, $tmp (a scratch directory) and a say() function; sets
# $spid and $port.

# start_server ARGS...: starts flashpolicyd on 127.0.0.1 (any free port) and waits
# (10 s max) for its `listening on` line; exits 1 with its log if it does not come.
start_server() {
    "$server_bin" -p 0 -b 127.0.0.1 "$@" 2> "$tmp/server.log" < /dev/null &
    spid=$!
    port=""
    for _ in $(seq 100); do
        port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$tmp/server.log" | head -1)
        [ -n "$port" ] && break
        kill -0 "$spid" 2>/dev/null || break
        sleep 0.1
    done
    if [ -z "$port" ]; then
        say "flashpolicyd did not start:"
        cat "$tmp/server.log" >&2
        exit 1
    fi
    say "flashpolicyd $* (pid $spid) listening on 127.0.0.1:$port"
}

# stop_server: SIGTERM, up to 8 s for a clean stop, then SIGKILL; logs its counters.
stop_server() {
    [ -n "$spid" ] || return 0
    kill -TERM "$spid" 2>/dev/null || true
    for _ in $(seq 80); do
        kill -0 "$spid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$spid" 2>/dev/null || true
    wait "$spid" 2>/dev/null || true
    grep -h 'stopped:' "$tmp/server.log" | sed 's/^/server /' | while IFS= read -r l; do say "$l"; done || true
    spid=""
}
