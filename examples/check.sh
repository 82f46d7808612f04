#!/usr/bin/env bash
# Runs the examples against a live `vnc-proxy demo`, so they cannot rot: starts the demo on a free
# port, reads the proxy address, secret and token it prints, then runs
#   examples/curl-probe.sh   (valid token -> 101 + RFB greeting, altered token -> 401 + JSON)
#   examples/mint-token.py   (a lab-orchestrator-lib-auth token opens the console: RFB 003.008)
#
#   bash examples/check.sh
#
# VNC_PROXY (default .build/debug/vnc-proxy, built by `swift build`) is the binary to run. PYTHON
# (default python3) must have lab-orchestrator-lib-auth==2.2.0 and websockets installed; Tests/e2e/run.sh
# runs this script with its venv. Prints `examples: N passed, M failed` and exits non-zero on a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
VNC_PROXY=${VNC_PROXY:-.build/debug/vnc-proxy}
PYTHON=${PYTHON:-python3}
[ -x "$VNC_PROXY" ] || { echo "examples: $VNC_PROXY is missing; run swift build first"; exit 1; }

work=$(mktemp -d)
demo_pid=
cleanup() {
    if [ -n "$demo_pid" ]; then kill "$demo_pid" 2>/dev/null || true; wait "$demo_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

"$VNC_PROXY" demo --port 0 >"$work/demo.out" 2>"$work/demo.err" &
demo_pid=$!
for _ in $(seq 1 100); do
    grep -q '^  token ' "$work/demo.out" 2>/dev/null && break
    kill -0 "$demo_pid" 2>/dev/null || break
    sleep 0.1
done
proxy=$(awk '$1 == "proxy" {print $2}' "$work/demo.out")
secret=$(awk '$1 == "secret" {print $2}' "$work/demo.out")
token=$(awk '$1 == "token" {print $2}' "$work/demo.out")
vmi=$(awk '$1 == "VMI" {print $2}' "$work/demo.out")
if [ -z "$proxy" ] || [ -z "$secret" ] || [ -z "$token" ] || [ -z "$vmi" ]; then
    echo "examples: vnc-proxy demo did not print its proxy, secret, token and VMI within 10 s:"
    cat "$work/demo.out" "$work/demo.err"
    exit 1
fi
namespace=${vmi%%/*} vm=${vmi#*/}
echo "examples: vnc-proxy demo is up: proxy $proxy, VMI $namespace/$vm"

passed=0 failed=0
run() {
    local name=$1; shift
    echo "-- $name"
    if "$@"; then passed=$((passed + 1)); else echo "examples: FAIL $name"; failed=$((failed + 1)); fi
}
run "curl-probe.sh against the demo" bash examples/curl-probe.sh "$proxy" "$token" "$vm"
run "mint-token.py against the demo" "$PYTHON" examples/mint-token.py --secret "$secret" \
    --namespace "$namespace" --vm "$vm" --proxy "$proxy"
if [ "$failed" -ne 0 ]; then echo "-- demo log (last 40 lines)"; tail -n 40 "$work/demo.err"; fi
echo "examples: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
