#!/bin/bash
# `make test-windows`: a smoke test of the Windows binaries under wine. Builds them
# (build.sh), installs wine64 if missing, and in a throw-away wine prefix: starts
# flashpolicyd.exe on a free loopback port, fetches the policy served from --file and
# from --allow and compares the bytes, checks that junk and silence get no policy, that
# an edited file is reloaded, runs flashpolicy-check.exe against it, stops it with
# Ctrl-C (exit 0), checks --log-file and --pid-file, and tries the Unix-only flags for
# their "not available on Windows" error (exit 2). docs/windows.md explains the wine
# details. Every wait is bounded; everything started here is killed at the end.
# Prints `N passed, M failed` last; exits 1 if anything failed.
#
# WINDOWS_SKIP_BUILD=1 uses the .exe files already built, EXE_DIR=dir the ones in dir;
# WINE=path picks the wine loader.
set -eu
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/common.sh"

START_SECS=30 # to see "listening on" in the log (the first run of a new prefix is slow)
STOP_SECS=15  # from Ctrl-C to exit: the connections in flight end within --timeout
RUN_SECS=60   # any one short-lived wine command

PASSED=0
FAILED=0
pass() { PASSED=$((PASSED + 1)); printf 'ok   %s\n' "$*"; }
fail() { FAILED=$((FAILED + 1)); printf 'FAIL %s\n' "$*"; }
# check NAME COMMAND...: one test, passed when COMMAND succeeds.
check() {
    local name=$1
    shift
    if "$@"; then pass "$name"; else fail "$name"; fi
}

# --- what we need ------------------------------------------------------------------

[ "${WINDOWS_SKIP_BUILD:-}" = 1 ] || "$ROOT/scripts/windows/build.sh" >&2
ensure_mingw
find_wine() {
    WINE=${WINE:-}
    [ -n "$WINE" ] && return 0
    # Debian's wine64 package puts the loader in /usr/lib/wine; `wine` adds /usr/bin/wine.
    for w in "$(command -v wine64 || true)" /usr/lib/wine/wine64 "$(command -v wine || true)"; do
        if [ -n "$w" ] && [ -x "$w" ]; then
            WINE=$w
            return 0
        fi
    done
    return 1
}
if ! find_wine; then
    apt_install wine64
    find_wine || { say "no wine loader after installing wine64"; exit 1; }
fi
WINESERVER=$(dirname "$WINE")/wineserver
[ -x "$WINESERVER" ] || WINESERVER=$(command -v wineserver || echo wineserver)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/flashpolicyd-wine.XXXXXX")
export WINEPREFIX="$WORK/prefix" WINEDEBUG=-all WINEARCH=win64
# No Mono or Gecko installer prompts: a console program needs neither.
export WINEDLLOVERRIDES="mscoree,mshtml="
DAEMON=

cleanup() {
    if [ -n "$DAEMON" ]; then kill -KILL "$DAEMON" 2>/dev/null || true; fi
    timeout 30 "$WINESERVER" -k 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A Unix path as the Windows program sees it: wine maps / to drive Z:.
winpath() { printf 'Z:%s' "$1" | sed 's|/|\\|g'; }
# run EXE ARGS...: runs one of our .exe files to completion, bounded.
run() {
    local exe=$1
    shift
    timeout "$RUN_SECS" "$WINE" "$EXE_DIR/$exe" "$@" </dev/null
}

# --- a fresh prefix, and the stand-in bcryptprimitives.dll ---------------------------

t0=$SECONDS
timeout 120 "$WINE" wineboot --init >/dev/null 2>&1 </dev/null ||
    say "wineboot --init failed (exit $?): the checks below will say what does not work"
say "wine prefix created in $((SECONDS - t0)) s ($("$WINE" --version 2>/dev/null || echo wine))"
# Rust's std (1.78 and later) may import ProcessPrng from bcryptprimitives.dll, which
# wine 8.0 lacks: without this stand-in such an .exe does not even load.
"$CC_WIN" -O2 -s -shared -o "$WINEPREFIX/drive_c/windows/system32/bcryptprimitives.dll" \
    "$ROOT/scripts/windows/bcryptprimitives.c" "$ROOT/scripts/windows/bcryptprimitives.def" \
    -lbcrypt
for exe in flashpolicyd.exe flashpolicy-check.exe; do
    if x86_64-w64-mingw32-objdump -p "$EXE_DIR/$exe" 2>/dev/null | grep -qi 'DLL Name: bcryptprimitives'; then
        say "$exe imports bcryptprimitives.dll: the stand-in is needed"
    fi
done

# --- the daemon under wine -----------------------------------------------------------

# start ERR LOG ARGS...: starts flashpolicyd.exe on 127.0.0.1, any free port, with its
# stderr in ERR, and waits for LOG (ERR itself, or the --log-file in ARGS) to say where
# it listens. Sets DAEMON (the Unix pid of the wine process, which is the Windows
# process) and PORT.
start() {
    local err=$1 log=$2
    shift 2
    PORT=
    : >"$err"
    "$WINE" "$EXE_DIR/flashpolicyd.exe" -b 127.0.0.1 -p 0 "$@" </dev/null >/dev/null 2>"$err" &
    DAEMON=$!
    wait_port "$log" "$err"
}

# wait_port LOG ERR: waits until LOG says "listening on 127.0.0.1:PORT"; sets PORT.
# On failure shows LOG and ERR.
wait_port() {
    local deadline=$((SECONDS + START_SECS))
    while [ "$SECONDS" -lt "$deadline" ]; do
        PORT=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$1" 2>/dev/null | head -n 1)
        [ -n "$PORT" ] && return 0
        kill -0 "$DAEMON" 2>/dev/null || break
        sleep 0.2
    done
    sort -u "$1" "$2" 2>/dev/null | sed 's/^/    | /'
    return 1
}

# stop: the console Ctrl-C. Under wine a CTRL_C_EVENT *is* a SIGINT to the process
# (wineserver turns GenerateConsoleCtrlEvent into one); wine's handler then calls the
# routine set with SetConsoleCtrlHandler, the one ctrlc installs, as Windows does.
# Sets STATUS to the exit code (or "hung" after STOP_SECS, when it is killed).
stop() {
    kill -INT "$DAEMON" 2>/dev/null || true # it may have exited by itself
    local deadline=$((SECONDS + STOP_SECS))
    while kill -0 "$DAEMON" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.2; done
    if kill -0 "$DAEMON" 2>/dev/null; then
        kill -KILL "$DAEMON" 2>/dev/null || true
        wait "$DAEMON" 2>/dev/null || true
        STATUS=hung
    else
        STATUS=0
        wait "$DAEMON" || STATUS=$?
    fi
    DAEMON=
}

# fetch OUT PRINTF-FORMAT [PAUSE-SECS SECOND-FORMAT]: connects to 127.0.0.1:PORT, sends
# the bytes (in two writes, PAUSE apart, if a second part is given), and saves
# everything received until the server closes (at most 10 s) to OUT.
fetch() {
    local out=$1
    : >"$out"
    exec 3<>"/dev/tcp/127.0.0.1/$PORT" || return 1
    # shellcheck disable=SC2059 # the formats are ours, for the \0 and \r\n escapes
    printf "$2" >&3
    if [ $# -ge 4 ]; then
        sleep "$3"
        # shellcheck disable=SC2059
        printf "$4" >&3
    fi
    local rc=0
    timeout 10 cat <&3 >"$out" || rc=$?
    exec 3<&-
    return "$rc"
}

REQ='<policy-file-request/>\0'

# got OUT EXPECTED FETCH-ARGS...: fetch, and the reply is exactly the bytes of EXPECTED.
got() {
    local out=$1 expected=$2
    shift 2
    fetch "$out" "$@" && cmp -s "$out" "$expected"
}
# eventually_got OUT EXPECTED FETCH-ARGS...: got, within 10 s of trying.
eventually_got() {
    local deadline=$((SECONDS + 10))
    until got "$@"; do
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 0.2
    done
}
# got_nothing OUT FETCH-ARGS...: fetch, and the server closed without a byte.
got_nothing() {
    local out=$1
    shift
    fetch "$out" "$@" && [ ! -s "$out" ]
}
# says RC NEEDLE CMD...: CMD exits RC and its output (stdout and stderr) has NEEDLE.
says() {
    local want=$1 needle=$2 rc=0 out
    shift 2
    out=$("$@" 2>&1) || rc=$?
    if [ "$rc" = "$want" ] && printf '%s' "$out" | grep -qF -- "$needle"; then return 0; fi
    printf '    | exit %s: %s\n' "$rc" "$out"
    return 1
}
# ends_in_one_nul FILE
ends_in_one_nul() {
    [ "$(tail -c 2 "$1" | od -An -tx1 | tr -d ' \n')" != 0000 ] &&
        [ "$(tail -c 1 "$1" | od -An -tx1 | tr -d ' \n')" = 00 ]
}

# --- 1. the binaries load ------------------------------------------------------------

check "flashpolicyd.exe --version" says 0 "flashpolicyd " run flashpolicyd.exe --version
check "flashpolicy-check.exe --version" says 0 "flashpolicy-check " run flashpolicy-check.exe --version

# --- 2. --file: the bytes of the file and one NUL; nothing for junk ------------------

POLICY="$WORK/crossdomain.xml"
cat >"$POLICY" <<'XML'
<?xml version="1.0"?>
<cross-domain-policy>
  <site-control permitted-cross-domain-policies="master-only"/>
  <allow-access-from domain="*.example.com" to-ports="843,8000-8100"/>
</cross-domain-policy>
XML
{ cat "$POLICY"; printf '\0'; } >"$WORK/expected-file"
LOG="$WORK/file.stderr"
PIDFILE="$WORK/flashpolicyd.pid"
if start "$LOG" "$LOG" --file "$(winpath "$POLICY")" --pid-file "$(winpath "$PIDFILE")" -t 1 \
    --reload-interval 0.2; then
    pass "--file: started, listening on 127.0.0.1:$PORT"
    check "--pid-file: holds a pid while it runs" grep -qx '[0-9][0-9]*' "$PIDFILE"
    check "--file: the file byte for byte, plus one NUL" \
        got "$WORK/got-file" "$WORK/expected-file" "$REQ"
    check "--file: a request split over two writes" \
        got "$WORK/got-split" "$WORK/expected-file" '<policy-file-' 0.3 'request/>\0'
    check "junk (an HTTP request): no policy, connection closed" \
        got_nothing "$WORK/got-junk" 'GET / HTTP/1.0\r\n\r\n'
    check "a silent client: closed after the 1 s --timeout" got_nothing "$WORK/got-idle" ''
    check "a second daemon on the same port: exit 1, cannot bind" \
        says 1 "cannot bind 127.0.0.1:$PORT" run flashpolicyd.exe -b 127.0.0.1 -p "$PORT"
    check "flashpolicy-check.exe: FLASHPOLICY OK, exit 0" \
        says 0 "FLASHPOLICY OK" run flashpolicy-check.exe -H 127.0.0.1 -p "$PORT"
    # An edit in place (same size, new time) is seen by the --reload-interval poll.
    sed 's/\*\.example\.com/*.example.org/' "$POLICY" >"$POLICY.new"
    cat "$POLICY.new" >"$POLICY"
    { cat "$POLICY"; printf '\0'; } >"$WORK/expected-reloaded"
    check "--reload-interval: the edited file is served" \
        eventually_got "$WORK/got-reloaded" "$WORK/expected-reloaded" "$REQ"
    stop
    check "Ctrl-C: exit 0 (got $STATUS)" test "$STATUS" = 0
    check "Ctrl-C: counters logged (rejected=1 empty=1: the silent client)" \
        grep -q 'stopped: served=[0-9]* rejected=1 empty=1 timed_out=0 ' "$LOG"
    check "--pid-file: removed on the clean stop" test ! -e "$PIDFILE"
else
    fail "--file: did not start"
    stop
fi

# --- 3. --allow: the generated policy, as --check-config prints it -------------------

ALLOW='www.example.com:8000-8100'
# log_only_in LOG ERR: the lines went to LOG (up to the last one), none to ERR.
log_only_in() { grep -q "stopped: served=" "$1" && [ ! -s "$2" ]; }
# check_config_allow OUT: --check-config --allow prints the document with the grant and
# one final NUL to OUT, and exits 0.
check_config_allow() {
    run flashpolicyd.exe --check-config --allow "$ALLOW" >"$1" 2>/dev/null &&
        ends_in_one_nul "$1" &&
        grep -q 'domain="www.example.com" to-ports="8000-8100"' "$1"
}
check "--check-config --allow: exit 0, the grant, one final NUL" \
    check_config_allow "$WORK/expected-allow"
LOG="$WORK/allow.log"
ERR="$WORK/allow.stderr"
if start "$ERR" "$LOG" --allow "$ALLOW" --log-file "$(winpath "$LOG")"; then
    pass "--allow: started, listening on 127.0.0.1:$PORT"
    check "--allow: the generated policy, byte for byte" \
        got "$WORK/got-allow" "$WORK/expected-allow" "$REQ"
    check "flashpolicy-check.exe -d www.example.com -P 8080: allowed, exit 0" \
        says 0 "FLASHPOLICY OK" run flashpolicy-check.exe -H 127.0.0.1 -p "$PORT" -d www.example.com -P 8080
    check "flashpolicy-check.exe -d www.example.com -P 9000: denied, exit 2" \
        says 2 "FLASHPOLICY CRITICAL" run flashpolicy-check.exe -H 127.0.0.1 -p "$PORT" -d www.example.com -P 9000 -t 1
    stop
    check "Ctrl-C: exit 0 (got $STATUS)" test "$STATUS" = 0
    check "--log-file: has the log, stderr stays empty" log_only_in "$LOG" "$ERR"
else
    fail "--allow: did not start"
    stop
fi

# --- 4. a stale --pid-file (left by a killed daemon) is taken over -------------------

LOG="$WORK/stale.stderr"
STALE="$WORK/stale.pid"
echo 999996 >"$STALE" # a pid no process has
# The pid file is written once the sockets are bound: wait for its log line (or an exit).
pid_file_done() {
    local deadline=$((SECONDS + START_SECS))
    while [ "$SECONDS" -lt "$deadline" ] && kill -0 "$DAEMON" 2>/dev/null; do
        grep -q "wrote pid" "$LOG" && return 0
        sleep 0.2
    done
    return 1
}
if start "$LOG" "$LOG" --pid-file "$(winpath "$STALE")" && pid_file_done &&
    grep -q "taking over stale pid file" "$LOG"; then
    pass "--pid-file: a stale one (pid 999996) is taken over"
else
    fail "--pid-file: a stale one (pid 999996) is taken over"
    sed 's/^/    | /' "$LOG"
fi
stop

# --- 5. usage errors, and the Unix-only flags ----------------------------------------

check "--port 70000: exit 2, names the flag" says 2 'invalid --port "70000"' run flashpolicyd.exe --port 70000
for flag in "--user nobody" "--group nogroup" "--inetd"; do
    # shellcheck disable=SC2086 # the flag and its value are two words
    check "$flag: exit 2, not available on Windows" \
        says 2 "${flag%% *} is not available on Windows" run flashpolicyd.exe $flag
done

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
