#!/usr/bin/env bash
# Coverage-guided fuzzing (libFuzzer, with AddressSanitizer) of the request router and the token
# verifier: what the proxy reads from strangers before anything else.
#
#   bash scripts/fuzz.sh [SECONDS]     # each fuzzer runs SECONDS (default 60); CI runs it too
#
# First every input under Fuzz/Regressions/TARGET is replayed (inputs that once failed; add new ones
# there), then each fuzzer starts from Fuzz/Corpus/TARGET plus a scratch corpus. A failure leaves its
# input under Fuzz/.artifacts/ and exits non-zero; copy that file to Fuzz/Regressions/TARGET/ with the fix.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SECONDS_PER_TARGET=${1:-60}
cd "$ROOT/Fuzz"

# SwiftPM passes --sanitize=fuzzer and --sanitize=address to swiftc as two flags, and swiftc keeps
# only the last: Swift code then gets AddressSanitizer but no coverage counters, and libFuzzer fuzzes
# blind ("no interesting inputs"). The combined flag, given last, keeps both.
SANITIZE=(--sanitize=fuzzer --sanitize=address -Xswiftc -sanitize=fuzzer,address)
echo "fuzz: building with libFuzzer and AddressSanitizer (a first build takes several minutes)"
swift build "${SANITIZE[@]}" 2>&1 | grep -E "error:|Build complete" || true
BIN=$(swift build "${SANITIZE[@]}" --show-bin-path)

mkdir -p .artifacts
SCRATCH=$(mktemp -d)
trap 'rm -rf "$SCRATCH"' EXIT
status=0
for target in FuzzRouter FuzzToken; do
    regressions=(Regressions/$target/*)
    if [ -e "${regressions[0]}" ]; then
        "$BIN/$target" -runs=1 "${regressions[@]}" >"$SCRATCH/$target-replay.log" 2>&1 \
            || { echo "fuzz: $target failed on a regression input"; tail -30 "$SCRATCH/$target-replay.log"; status=1; continue; }
        echo "fuzz: $target replayed ${#regressions[@]} regression input(s)"
    fi
    mkdir -p "$SCRATCH/$target"
    if "$BIN/$target" -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix=".artifacts/$target-" "$SCRATCH/$target" "Corpus/$target" >"$SCRATCH/$target.log" 2>&1; then
        runs=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$SCRATCH/$target.log" | grep -Eo '[0-9]+$' || echo "?")
        cov=$(grep -Eo 'cov: [0-9]+' "$SCRATCH/$target.log" | tail -1 | grep -Eo '[0-9]+' || echo "?")
        corpus=$(ls "$SCRATCH/$target" | wc -l)
        if grep -q "no interesting inputs were found" "$SCRATCH/$target.log"; then
            echo "fuzz: $target ran without coverage feedback (the Swift code is not instrumented)"; status=1
        fi
        echo "fuzz: $target: $runs inputs in ${SECONDS_PER_TARGET} s, coverage $cov edges, corpus $corpus, 0 failures"
    else
        echo "fuzz: $target FAILED; input saved under Fuzz/.artifacts/"
        grep -E "ERROR|Fatal error|precondition|SUMMARY|Test unit written" "$SCRATCH/$target.log" | head -20
        status=1
    fi
done
exit $status
