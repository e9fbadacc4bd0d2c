#!/usr/bin/env bash
# `make bench`: builds the release binaries, starts flashpolicyd on 127.0.0.1 (any
# free port, default workers, embedded policy), and runs flashpolicy-bench against it:
# rate at concurrency 1, 16, 64, 256, then an idle flood and a trickle flood (2,000
# held connections beside 16 clients); then the two floods again against a fresh
# server with --workers 8. Prints a markdown table with the server's CPU time per
# connection and peak RSS, and keeps it (and the raw RESULT lines) in target/bench/.
#
# Environment:
#   BENCH_SECS=5           seconds per scenario
#   BENCH_CONC="1 16 64 256"   concurrencies of the rate scenarios
#   BENCH_HELD=2000        held connections in the floods
#   BENCH_FLOOD_CLIENTS=16 measuring clients in the floods
#   BENCH_OUT=target/bench where the table and raw results go
#
# Loopback only; every step is bounded in time; every process started here is
# stopped by its pid on exit. About 8 x BENCH_SECS + 20 s in all.
set -eu

cd "$(dirname "$0")/.."
secs=${BENCH_SECS:-5}
conc=${BENCH_CONC:-"1 16 64 256"}
held=${BENCH_HELD:-2000}
flood_clients=${BENCH_FLOOD_CLIENTS:-16}
out_dir=${BENCH_OUT:-target/bench}
server_bin=target/release/flashpolicyd
client_bin=target/release/flashpolicy-bench
clk=$(getconf CLK_TCK)

say() { printf 'bench: %s\n' "$*" >&2; }
# shellcheck source=scripts/lib/server.sh
. scripts/lib/server.sh

for n in "$secs" "$held" "$flood_clients"; do
    case $n in
        '' | *[!0-9]*)
            say "BENCH_SECS, BENCH_HELD and BENCH_FLOOD_CLIENTS must be whole numbers (got '$n')"
            exit 2
            ;;
    esac
done

say "building release binaries"
"${CARGO:-cargo}" build --release --quiet --bin flashpolicyd --bin flashpolicy-bench

# The client holds 2,000+ sockets; the server raises its own limit.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

mkdir -p "$out_dir"
stamp=$(date +%Y%m%d-%H%M%S)
raw=$out_dir/bench-$stamp.txt
table=$out_dir/bench-$stamp.md
tmp=$(mktemp -d /tmp/flashpolicy-bench.XXXXXX)
spid=""
sampler=""

stop_sampler() {
    if [ -n "$sampler" ]; then
        kill "$sampler" 2>/dev/null || true
        wait "$sampler" 2>/dev/null || true
        sampler=""
    fi
}

cleanup() {
    stop_sampler
    stop_server
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# CPU ticks (utime + stime) of a process; fields 14 and 15 of /proc/PID/stat,
# counted after the ")" that ends the command name.
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }
# Busy ticks of the whole machine (user nice system irq softirq steal).
machine_ticks() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9; exit}' /proc/stat; }
status_kb() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }
fd_count() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }

# Peak thread and descriptor counts of the server, sampled every 0.2 s while a
# scenario runs (bounded by a count; stopped by pid).
sample_peaks() {
    local max_t=0 max_f=0 t f
    for _ in $(seq $((secs * 5 + 150))); do
        kill -0 "$spid" 2>/dev/null || break
        t=$(status_kb "$spid" Threads) || break
        f=$(fd_count "$spid")
        [ "${t:-0}" -gt "$max_t" ] && max_t=$t
        [ "$f" -gt "$max_f" ] && max_f=$f
        echo "$max_t $max_f" > "$tmp/peaks"
        sleep 0.2
    done
}

# scenario NAME CLIENT-ARGS...: one client run; appends a key=value line to $raw.
scenario() {
    local name=$1 cpu0 cpu1 m0 m1 t0 t1 line peaks
    shift
    say "$name: flashpolicy-bench $*"
    echo "0 0" > "$tmp/peaks"
    sample_peaks &
    sampler=$!
    cpu0=$(cpu_ticks "$spid")
    m0=$(machine_ticks)
    t0=$(date +%s.%N)
    timeout -k 5 $((secs + 60)) "$client_bin" "$@" -H 127.0.0.1 -p "$port" -d "$secs" \
        --label "$name" > "$tmp/client.out" || true
    t1=$(date +%s.%N)
    m1=$(machine_ticks)
    cpu1=$(cpu_ticks "$spid" 2>/dev/null || echo "$cpu0")
    stop_sampler
    grep -v '^RESULT ' "$tmp/client.out" | sed "s/^/bench: $name: /" >&2 || true
    if ! kill -0 "$spid" 2>/dev/null; then
        say "$name: the server died; its last lines:"
        tail -5 "$tmp/server.log" >&2
        exit 1
    fi
    line=$(grep '^RESULT ' "$tmp/client.out" || true)
    if [ -z "$line" ]; then
        say "$name: the client printed no RESULT line"
        line="RESULT label=$name ok=0"
    fi
    read -r peaks < "$tmp/peaks"
    echo "${line#RESULT } scenario=$name server_cpu_s=$(awk -v a="$cpu0" -v b="$cpu1" -v c="$clk" 'BEGIN {printf "%.2f", (b - a) / c}') \
machine_busy_s=$(awk -v a="$m0" -v b="$m1" -v c="$clk" 'BEGIN {printf "%.2f", (b - a) / c}') \
wall_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", b - a}') \
peak_rss_kb=$(status_kb "$spid" VmHWM) peak_threads=${peaks% *} peak_fds=${peaks#* }" >> "$raw"
    sleep 0.5
}

{
    echo "# make bench $(date -Is) host=$(hostname) nproc=$(nproc) kernel=$(uname -r) loadavg=\"$(cut -d' ' -f1-3 /proc/loadavg)\""
    echo "# commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (uncommitted changes)')"
    echo "# BENCH_SECS=$secs BENCH_CONC=\"$conc\" BENCH_HELD=$held BENCH_FLOOD_CLIENTS=$flood_clients"
} > "$raw"
t_start=$SECONDS

start_server
for c in $conc; do
    scenario "c=$c" rate -c "$c"
done
scenario "idle flood" idle -c "$flood_clients" -k "$held"
scenario "trickle flood" trickle -c "$flood_clients" -k "$held"
stop_server

start_server --workers 8
scenario "idle flood, -w 8" idle -c "$flood_clients" -k "$held"
scenario "trickle flood, -w 8" trickle -c "$flood_clients" -k "$held"
stop_server

echo "# finished after $((SECONDS - t_start)) s loadavg=\"$(cut -d' ' -f1-3 /proc/loadavg)\"" >> "$raw"

# The table: one row per scenario; "% of c=16" compares a flood's rate with the
# rate of the same number of clients without a flood.
awk -v held="$held" -v fc="$flood_clients" '
function us(v) {
    if (v == "") return "–"
    v = v + 0
    if (v < 1000) return sprintf("%d µs", v)
    if (v < 10000) return sprintf("%.2f ms", v / 1000)
    if (v < 1000000) return sprintf("%.1f ms", v / 1000)
    return sprintf("%.2f s", v / 1000000)
}
function num(v) { return v == "" ? 0 : v + 0 }
/^#/ { next }
{
    delete f
    for (i = 1; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = substr($i, length(kv[1]) + 2) }
    # The scenario name has spaces: take everything between scenario= and the next key.
    s = $0; sub(/.* scenario=/, "", s); sub(/ server_cpu_s=.*/, "", s)
    n++
    name[n] = s; rate[n] = num(f["rate"]); ok[n] = num(f["ok"])
    row[n] = sprintf("| %s | %s | %.0f | %s | %s | %s | %d | %d | %s | %s | %.1f MB | %d | %.2f |",
        s, f["clients"], rate[n], us(f["p50_us"]), us(f["p99_us"]), us(f["max_us"]),
        num(f["errors"]), num(f["resets"]),
        num(f["held"]) > 0 ? f["held_open_avg"] "/" f["held"] : "–",
        ok[n] > 0 ? sprintf("%.1f µs", f["server_cpu_s"] * 1e6 / ok[n]) : "–",
        num(f["peak_rss_kb"]) / 1024, num(f["peak_threads"]),
        num(f["wall_s"]) > 0 ? (f["machine_busy_s"] - f["server_cpu_s"] - f["client_cpu_s"]) / f["wall_s"] : 0)
    if (s == "c=" fc) base = rate[n]
    errs = ""
    for (k in f) if (k ~ /^err_/ && num(f[k]) > 0) errs = errs " " substr(k, 5) "=" f[k]
    if (errs != "") note[n] = "* " s ": errors" errs
}
END {
    print "| scenario | clients | conn/s | p50 | p99 | max | errors | resets | held open (avg) | server CPU/conn | peak RSS | peak threads | other load (cores) | % of c=" fc " |"
    print "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    for (i = 1; i <= n; i++) {
        pct = (name[i] ~ /flood/ && base > 0) ? sprintf("%.0f %%", 100 * rate[i] / base) : "–"
        print row[i] " " pct " |"
    }
    for (i = 1; i <= n; i++) if (note[i] != "") print note[i]
}' "$raw" > "$tmp/table.md"

{
    echo
    head -3 "$raw" | sed 's/^# /    /'
    echo
    cat "$tmp/table.md"
} | tee "$table"
say "done in $((SECONDS - t_start)) s; table $table, raw results $raw"
