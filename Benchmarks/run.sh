#!/usr/bin/env bash
# Benchmarks vnc-proxy against nginx, the original Python proxy and a direct connection.
#
#   bash Benchmarks/run.sh            # full run (about 25 minutes on 2 cores), writes Benchmarks/RESULTS.md
#   bash Benchmarks/run.sh --smoke    # tiny counts (under 2 minutes once built), writes Benchmarks/.build/RESULTS-smoke.md
#
# Other arguments go to harness.py (--peers vnc-proxy,nginx --scenarios download,rtt --out FILE --no-pin ...).
# Needs: the Swift toolchain, python3, taskset; installs nginx (apt) and the Python proxy (venv, PyPI) if missing.
# All traffic stays on 127.0.0.1.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"
scratch="$here/.build"

echo "== tools"
if ! command -v nginx >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null
fi
venv="$scratch/venv"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import lab_orchestrator_ws_proxy_lib' 2>/dev/null; then
    mkdir -p "$scratch"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check lab-orchestrator-ws-proxy-lib==1.0.0
fi

echo "== release build (scratch path $scratch)"
swift build -c release --scratch-path "$scratch" --product vncbench
swift build -c release --scratch-path "$scratch" --product vnc-proxy
bin="$(swift build -c release --scratch-path "$scratch" --show-bin-path)"

# 10,000 idle sessions need about 20,000 descriptors in the proxy and as many in the load generator.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt 65536 ]; then
    ulimit -n 65536 2>/dev/null || echo "warning: ulimit -n is $(ulimit -n); the 10,000-session run may fail" >&2
fi

echo "== benchmarks"
exec python3 "$here/harness.py" --vncbench "$bin/vncbench" --vnc-proxy "$bin/vnc-proxy" --python "$venv/bin/python" "$@"
