#!/usr/bin/env bash
# `make soak`: one million connections against a release flashpolicyd on 127.0.0.1,
# mixed: good requests (20 % of them sent in two writes 2 ms apart, so the server
# parks them until the rest arrives), junk (HTTP, a cut-short request, TLS), and held
# connections that idle or trickle the request a byte a second (the server times them
# out and they come back). Threads, open descriptors and RSS of the server are taken before
# and after (once the load stopped and its connections drained), and must match:
# threads equal, descriptors within +-SOAK_FD_SLACK, RSS at most SOAK_RSS_SLACK_KB
# above. Prints the figures; exits 1 if a check fails or the server died.
#
# "Before" is taken after a short warm-up (SOAK_WARMUP transactions), so that
# memory every server touches once (worker stacks, allocator arenas) is not taken
# for a leak; the cold figures are printed too.
#
# Environment:
#   SOAK_CONNS=1000000    client transactions (held connections come on top)
#   SOAK_CLIENTS=16       client threads        SOAK_JUNK=25   percent junk
#   SOAK_HELD=400         held connections (half idle, half trickling)
#   SOAK_MAX_SECS=1800    the run stops after this even if SOAK_CONNS is not reached
#   SOAK_WARMUP=20000     SOAK_FD_SLACK=2       SOAK_RSS_SLACK_KB=1024
#   SOAK_SERVER_ARGS=""   extra flashpolicyd flags, e.g. "--workers 8"
#
# Loopback only; every step is bounded in time; the server is stopped by its pid.
set -eu

cd "$(dirname "$0")/.."
conns=${SOAK_CONNS:-1000000}
clients=${SOAK_CLIENTS:-16}
junk=${SOAK_JUNK:-25}
held=${SOAK_HELD:-400}
max_secs=${SOAK_MAX_SECS:-1800}
warmup=${SOAK_WARMUP:-20000}
fd_slack=${SOAK_FD_SLACK:-2}
rss_slack=${SOAK_RSS_SLACK_KB:-1024}
server_args=${SOAK_SERVER_ARGS:-}
server_bin=target/release/flashpolicyd
client_bin=target/release/flashpolicy-bench

say() { printf 'soak: %s\n' "$*" >&2; }
# shellcheck source=scripts/lib/server.sh
. scripts/lib/server.sh

for n in "$conns" "$clients" "$junk" "$held" "$max_secs" "$warmup" "$fd_slack" "$rss_slack"; do
    case $n in
        '' | *[!0-9]*)
            say "the SOAK_* settings must be whole numbers (got '$n')"
            exit 2
            ;;
    esac
done

say "building release binaries"
"${CARGO:-cargo}" build --release --quiet --bin flashpolicyd --bin flashpolicy-bench
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

tmp=$(mktemp -d /tmp/flashpolicy-soak.XXXXXX)
spid=""

# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
    stop_server
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# shellcheck disable=SC2086 # server_args is a list of flags
start_server $server_args

status_kb() { awk -v k="$1:" '$1 == k {print $2}' "/proc/$spid/status"; }
# "threads fds rss_kb hwm_kb" of the server now.
snapshot() {
    echo "$(status_kb Threads) $(find "/proc/$spid/fd" -mindepth 1 -maxdepth 1 | wc -l) $(status_kb VmRSS) $(status_kb VmHWM)"
}
alive() { kill -0 "$spid" 2>/dev/null; }
# client ARGS...: one bounded client run; its RESULT line goes to $tmp/result.
client() {
    timeout -k 5 $((max_secs + 120)) "$client_bin" "$@" -H 127.0.0.1 -p "$port" \
        > "$tmp/client.out" || true
    grep -v '^RESULT ' "$tmp/client.out" | sed 's/^/soak:   /' >&2 || true
    grep '^RESULT ' "$tmp/client.out" > "$tmp/result" || echo "RESULT ok=0" > "$tmp/result"
}
field() { tr ' ' '\n' < "$tmp/result" | sed -n "s/^$1=//p"; }
# Waits (20 s at most) until the server is back to THREADS threads and at most
# FDS + slack descriptors: connections drained, deadlines expired.
settle() {
    local threads fds _rss _hwm
    for _ in $(seq 100); do
        alive || return 0
        read -r threads fds _rss _hwm < <(snapshot)
        [ "$threads" -le "$1" ] && [ "$fds" -le $(($2 + fd_slack)) ] && break
        sleep 0.2
    done
    sleep 1
}

read -r cold_threads cold_fds cold_rss _ < <(snapshot)
say "cold: threads=$cold_threads fds=$cold_fds rss=${cold_rss} kB; warm-up: $warmup transactions"
client mix -c "$clients" -k 40 --junk-percent "$junk" -n "$warmup" -d 60
settle "$cold_threads" "$cold_fds"
read -r base_threads base_fds base_rss _ < <(snapshot)
say "before: threads=$base_threads fds=$base_fds rss=${base_rss} kB"

say "soak: $conns transactions, $clients clients, $junk % junk, $held held (half idle, half trickling), at most $max_secs s"
t0=$SECONDS
client mix -c "$clients" -k "$held" --junk-percent "$junk" -n "$conns" -d "$max_secs" --label soak
soak_secs=$((SECONDS - t0))
settle "$base_threads" "$base_fds"

failed=0
check() {  # DESCRIPTION COMMAND...
    local what=$1
    shift
    if "$@"; then
        say "ok:   $what"
    else
        say "FAIL: $what"
        failed=1
    fi
}
if ! alive; then
    say "FAIL: the server died during the soak; its last lines:"
    tail -5 "$tmp/server.log" >&2
    exit 1
fi
read -r after_threads after_fds after_rss peak_rss < <(snapshot)
ok=$(field ok)
total=$(field connections)
errors=$(field errors)
cp "$tmp/result" "$tmp/soak.result"

# The server must still answer after all that.
client rate -c 1 -d 0.5
probe_ok=$(field ok)
probe_errors=$(field errors)

echo
echo "soak: $total connections ($ok good of which $(tr ' ' '\n' < "$tmp/soak.result" | sed -n 's/^split_ok=//p') split, $(tr ' ' '\n' < "$tmp/soak.result" | sed -n 's/^junk_ok=//p') junk, $(tr ' ' '\n' < "$tmp/soak.result" | sed -n 's/^held_opened=//p') held, $errors client errors) in $soak_secs s"
printf '%-8s %8s %8s %8s %s\n' "" threads fds "rss kB" "" \
    cold "$cold_threads" "$cold_fds" "$cold_rss" "(at start)" \
    before "$base_threads" "$base_fds" "$base_rss" "(after $warmup warm-up transactions)" \
    after "$after_threads" "$after_fds" "$after_rss" "(peak RSS $peak_rss kB)"
check "threads after == before ($after_threads == $base_threads)" \
    test "$after_threads" -eq "$base_threads"
check "descriptors within $fd_slack ($after_fds vs $base_fds)" \
    test "$after_fds" -le $((base_fds + fd_slack)) -a "$after_fds" -ge $((base_fds - fd_slack))
check "RSS grew at most $rss_slack kB ($((after_rss - base_rss)) kB)" \
    test "$after_rss" -le $((base_rss + rss_slack))
check "good transactions during the soak ($ok)" test "${ok:-0}" -gt 0
check "the server still answers ($probe_ok good, $probe_errors errors)" \
    test "${probe_ok:-0}" -gt 0 -a "${probe_errors:-1}" -eq 0
stop_server
exit "$failed"
