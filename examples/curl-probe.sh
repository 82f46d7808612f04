#!/usr/bin/env bash
# Probe vnc-proxy's websocket route with plain curl: a valid token must get `101 Switching Protocols`
# followed by the VNC greeting, an invalid one a 4xx status with a JSON body {"error","reason"}.
#
#   PROXY=http://127.0.0.1:5001 TOKEN=eyJ... VM=testvm bash examples/curl-probe.sh
#   bash examples/curl-probe.sh http://127.0.0.1:5001 eyJ... testvm        # the same, as arguments
#
# PROXY may carry a path prefix (http://host:port/ws_proxy) and may be written ws:// or wss://.
# BAD_TOKEN (default: TOKEN with its signature altered) is the token of the second probe.
# Exit status 0 only if both answers are as expected. Against `vnc-proxy demo`, copy the demo's
# proxy address, token and VMI name (testvm) into the variables; examples/check.sh does it for you.
set -euo pipefail

PROXY=${1:-${PROXY:-http://127.0.0.1:5001}}
TOKEN=${2:-${TOKEN:?set TOKEN (vnc-proxy token ..., or the token vnc-proxy demo prints)}}
VM=${3:-${VM:?set VM, the VMI name (testvm for vnc-proxy demo)}}
PROXY=${PROXY%/}
case $PROXY in ws://*) PROXY=http://${PROXY#ws://} ;; wss://*) PROXY=https://${PROXY#wss://} ;; esac
# Flip the signature's last character: still a well-formed JWT, but the signature no longer verifies.
last=${TOKEN: -1}; if [ "$last" = A ]; then repl=B; else repl=A; fi
BAD_TOKEN=${BAD_TOKEN:-${TOKEN%?}$repl}

work=$(mktemp -d); trap 'rm -rf "$work"' EXIT

# probe TOKEN OUTFILE: send the upgrade, keep what arrives for at most 3 s (a 101 stays open).
probe() {
    local rc=0
    curl -sS -i -N --http1.1 --max-time 3 \
        -H 'Connection: Upgrade' -H 'Upgrade: websocket' \
        -H 'Sec-WebSocket-Version: 13' -H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==' \
        -o "$2" "$PROXY/$1/$VM" 2>"$2.err" || rc=$?
    # 28: the time limit ended an upgraded connection, which is what a 101 looks like to curl.
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 28 ]; then
        echo "   FAIL: curl exit code $rc: $(cat "$2.err")"; : >"$2"; return 0
    fi
}
status_of() { head -n 1 "$1" | tr -d '\r'; }

fail=0
echo "== valid token: $PROXY/<token>/$VM"
probe "$TOKEN" "$work/good"
status=$(status_of "$work/good")
echo "   $status"
greeting=$(grep -a -o 'RFB [0-9][0-9][0-9]\.[0-9][0-9][0-9]' "$work/good" | head -n 1 || true)
if [[ $status == "HTTP/1.1 101 "* ]] && [ -n "$greeting" ]; then
    echo "   first websocket frame carries: $greeting"
    echo "   ok: 101 and the VNC greeting"
else
    echo "   FAIL: expected 101 Switching Protocols and an RFB greeting; got:"
    head -c 600 "$work/good" | cat -v; echo
    fail=1
fi

echo "== invalid token: $PROXY/<altered token>/$VM"
probe "$BAD_TOKEN" "$work/bad"
status=$(status_of "$work/bad")
body=$(sed -n '/^\r*$/,$p' "$work/bad" | tr -d '\r' | sed '/^$/d')
echo "   $status"
echo "   $body"
if [[ $status =~ ^HTTP/1\.1\ 4[0-9][0-9]\  ]] && [[ $body == *'"error"'* ]]; then
    echo "   ok: refused before the upgrade, with a JSON reason"
else
    echo "   FAIL: expected a 4xx status with a JSON body {\"error\",\"reason\"}"
    fail=1
fi
exit "$fail"
