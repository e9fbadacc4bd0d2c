# shellcheck shell=sh
# Sourced by the route checks (scripts/static-smoke.sh, scripts/dist-check.sh,
# scripts/deb-check.sh): start a flashpolicyd, fetch its policy with flashpolicy-check,
# stop it with SIGTERM and insist on a clean exit. Every wait has a deadline.

# smoke_say TEXT...: one progress line, prefixed with the calling script's name.
smoke_say() {
    echo "${smoke_name:-smoke}: $*"
}

# smoke_fail TEXT...: the check failed: say why (with the daemon's log) and exit 1.
smoke_fail() {
    echo "${smoke_name:-smoke}: FAILED: $*" >&2
    if [ -n "${smoke_log:-}" ] && [ -s "$smoke_log" ]; then
        echo "--- daemon log ($smoke_log):" >&2
        cat "$smoke_log" >&2
    fi
    exit 1
}

# smoke_started LOG PID: waits (10 s) for the daemon PID, logging to LOG, to announce
# `listening on 127.0.0.1:PORT`; sets smoke_pid and smoke_port. Start the daemon in the
# background with `exec` all the way down (env, chroot and sh -c exec do), so that PID
# is the daemon itself.
smoke_started() {
    smoke_log=$1
    smoke_pid=$2
    smoke_port=""
    i=0
    while [ "$i" -lt 100 ]; do
        smoke_port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$smoke_log" | head -n 1)
        [ -n "$smoke_port" ] && return 0
        kill -0 "$smoke_pid" 2>/dev/null || smoke_fail "the daemon exited before it listened"
        sleep 0.1
        i=$((i + 1))
    done
    smoke_fail "the daemon did not announce its port within 10 s"
}

# smoke_fetch CHECKER...: runs the checker command (given without -H/-p) against the
# daemon; it must exit 0 with `FLASHPOLICY OK` as its first line.
smoke_fetch() {
    if ! out=$("$@" -H 127.0.0.1 -p "$smoke_port" 2>&1); then
        smoke_fail "the checker did not exit 0: $out"
    fi
    case $out in
        "FLASHPOLICY OK"*) smoke_say "fetched: $(echo "$out" | head -n 1)" ;;
        *) smoke_fail "unexpected checker output: $out" ;;
    esac
}

# smoke_reload POLICY CHECKER...: edits the policy file POLICY (the example policy,
# whose *.example.com entry allows ports 843 and 8080) so that it allows port 9090 too,
# the way an operator does (a new file moved over the old one), and checks that the
# daemon (started with a short --reload-interval) serves the new policy: before, the
# checker says a SWF from game.example.com may not connect to 9090; after the daemon
# logs `policy reloaded` (10 s deadline), it says it may. flashpolicyd reloads by
# watching its file: SIGHUP is a stop signal there, not a reload.
smoke_reload() {
    policy=$1
    shift
    if "$@" -H 127.0.0.1 -p "$smoke_port" -d game.example.com -P 9090 >/dev/null 2>&1; then
        smoke_fail "port 9090 was allowed before the policy was edited: the reload check proves nothing"
    fi
    grep -q 'to-ports="843,8080"' "$policy" || smoke_fail "$policy has no to-ports=\"843,8080\" to edit"
    before=$(grep -c 'INFO policy reloaded' "$smoke_log" || :)
    sed 's/to-ports="843,8080"/to-ports="843,8080,9090"/' "$policy" >"$policy.new"
    mv "$policy.new" "$policy"
    i=0
    while [ "$(grep -c 'INFO policy reloaded' "$smoke_log" || :)" = "$before" ]; do
        kill -0 "$smoke_pid" 2>/dev/null || smoke_fail "the daemon exited while reloading"
        [ "$i" -lt 100 ] || smoke_fail "no \`policy reloaded\` line within 10 s of editing $policy"
        sleep 0.1
        i=$((i + 1))
    done
    if ! out=$("$@" -H 127.0.0.1 -p "$smoke_port" -d game.example.com -P 9090 2>&1); then
        smoke_fail "after the reload, port 9090 is still refused: $out"
    fi
    smoke_say "edited policy reloaded and served: $(echo "$out" | head -n 1)"
}

# smoke_stop: SIGTERM, then up to 10 s for exit status 0 and the `stopped:` line.
smoke_stop() {
    [ -n "${smoke_pid:-}" ] || return 0
    kill -TERM "$smoke_pid"
    i=0
    while kill -0 "$smoke_pid" 2>/dev/null && [ "$i" -lt 100 ]; do
        # A zombie still answers kill -0; wait reaps it below.
        if [ -r "/proc/$smoke_pid/stat" ] && [ "$(cut -d' ' -f3 "/proc/$smoke_pid/stat")" = Z ]; then
            break
        fi
        sleep 0.1
        i=$((i + 1))
    done
    if [ "$i" -ge 100 ]; then
        kill -KILL "$smoke_pid" 2>/dev/null || :
        smoke_pid=""
        smoke_fail "the daemon did not stop within 10 s of SIGTERM"
    fi
    rc=0
    wait "$smoke_pid" || rc=$?
    smoke_pid=""
    [ "$rc" -eq 0 ] || smoke_fail "the daemon exited $rc after SIGTERM, not 0"
    grep -q 'INFO stopped: served=' "$smoke_log" || smoke_fail "no \`stopped:\` line in the log"
    smoke_say "stopped by SIGTERM, exit 0: $(grep 'INFO stopped:' "$smoke_log" | sed 's/.*INFO //')"
}

# smoke_cleanup: for an EXIT trap: kill a daemon left running by a failed check.
smoke_cleanup() {
    if [ -n "${smoke_pid:-}" ]; then
        kill -KILL "$smoke_pid" 2>/dev/null || :
        wait "$smoke_pid" 2>/dev/null || :
    fi
}
