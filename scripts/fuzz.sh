#!/bin/sh
# Fuzz the parsers (make fuzz): each cargo-fuzz target of tests/fuzz in turn, for
# FUZZ_SECS seconds each (default 60), one process at a time. New interesting inputs
# are saved in tests/fuzz/corpus/TARGET/, crashes in tests/fuzz/artifacts/TARGET/.
#
#   scripts/fuzz.sh [TARGET...]        fuzz these targets (default: all)
#   scripts/fuzz.sh cmin [TARGET...]   minimise their saved corpus instead
#
# Needs the nightly toolchain (rustup toolchain install nightly); installs cargo-fuzz
# when it is missing. `make test` replays the saved corpus on stable
# (tests/daemon/fuzz_corpus.rs), so keep it small: run cmin after a long session.
set -eu
cd "$(dirname "$0")/.."

FUZZ_SECS=${FUZZ_SECS:-60}
FUZZ_DIR=tests/fuzz
ALL_TARGETS="request_matcher policy_validate allow_spec domain_match"

mode=run
if [ "${1:-}" = cmin ]; then
    mode=cmin
    shift
fi
targets=${*:-$ALL_TARGETS}

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    echo "fuzz.sh: cargo-fuzz needs the nightly toolchain: rustup toolchain install nightly" >&2
    exit 1
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

# The parsers are safe Rust: no sanitizer, so more runs per second.
fuzz="cargo +nightly fuzz"
opts="--fuzz-dir $FUZZ_DIR --sanitizer none"

for target in $targets; do
    corpus=$FUZZ_DIR/corpus/$target
    mkdir -p "$corpus"
    if [ "$mode" = cmin ]; then
        # Inputs that once crashed stay, whether or not they add coverage. Keeping one
        # input per new edge (not per hit count) keeps the replay corpus small.
        keep=$(mktemp -d)
        find "$corpus" -maxdepth 1 -type f -name 'regression-*' -exec cp {} "$keep" \;
        $fuzz cmin $opts "$target" "$corpus" -- -use_counters=0
        cp "$keep"/* "$corpus" 2>/dev/null || true
        rm -r "$keep"
        echo "fuzz.sh: $target: $(ls "$corpus" | wc -l) inputs after cmin"
        continue
    fi
    dict=""
    if [ -f "$FUZZ_DIR/dict/$target.dict" ]; then
        dict="-dict=$FUZZ_DIR/dict/$target.dict"
    fi
    echo "fuzz.sh: $target for ${FUZZ_SECS}s"
    $fuzz run $opts "$target" "$corpus" -- -max_total_time="$FUZZ_SECS" $dict
done
