#!/bin/sh
# Proves that `make test` passes where a newcomer may clone: clones this checkout's HEAD
# into a fresh mode-700 directory (as `mktemp -d` makes it; under /root it is the same),
# starts LOAD busy loops to load the CPUs, runs `make test` RUNS times in a row there,
# and prints how many runs failed (exit 1 if any). The busy loops and the clone are
# removed at the end. The first run builds the tests; the later ones reuse the build.
# Usage: RUNS=5 LOAD=3 scripts/test-private-clone.sh     (defaults: 5 and 3)
set -eu
cd "$(dirname "$0")/.."
runs=${RUNS:-5}
load=${LOAD:-3}

dir=$(mktemp -d)
loops=""
cleanup() {
    for pid in $loops; do kill "$pid" 2>/dev/null || :; done
    rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
chmod 0700 "$dir"
git clone -q . "$dir/clone"
echo "test-private-clone: $(git rev-parse --short HEAD) cloned into $dir/clone ($(stat -c %A "$dir") $dir), as $(id -un)"

i=0
while [ "$i" -lt "$load" ]; do
    sh -c 'while :; do :; done' &
    loops="$loops $!"
    i=$((i + 1))
done
echo "test-private-clone: $load busy loops:$loops"

failed=0
n=1
while [ "$n" -le "$runs" ]; do
    start=$(date +%s)
    if (cd "$dir/clone" && make test) >"$dir/run$n.log" 2>&1; then
        result=passed
    else
        result=FAILED
        failed=$((failed + 1))
        grep -E '^test .* FAILED$|panicked at|^error' "$dir/run$n.log" | head -n 20 >&2 || :
    fi
    echo "test-private-clone: run $n/$runs $result in $(($(date +%s) - start)) s;" \
        "$(grep -c '^test .* ok$' "$dir/run$n.log") tests ok, skipped: $(grep -o '^SKIPPED [^:]*' "$dir/run$n.log" | sed 's/SKIPPED //' | sort -u | tr '\n' ' ')"
    n=$((n + 1))
done
echo "test-private-clone: $failed of $runs runs failed"
[ "$failed" -eq 0 ]
