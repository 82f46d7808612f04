#!/usr/bin/env bash
# End-to-end suite: a real VNC server (TigerVNC's Xvnc) behind the KubeVirt simulator (TLS, bearer
# token), `vnc-proxy serve` in front of it configured as in a pod, and real viewers through the proxy:
# noVNC in headless Chromium (driven over the DevTools protocol; vnc_lite.html from a separate web
# server, and the proxy's own /vnc console page served with `--web`), vncdotool through
# `vnc-proxy connect`, curl, and the Python `websockets` client with a lab-orchestrator-lib-auth token.
#
#   bash Tests/e2e/run.sh          # from the repo root; as root on Debian 12 it installs what it needs
#
# Every check prints what it looked at. The run ends with `e2e: N passed, M failed`; on a failure it
# prints the last 40 lines of every process's log and exits 1. Screenshots and logs stay in the work
# folder it prints (E2E_WORK overrides it). The Python tools go into a venv (E2E_VENV, default
# /tmp/vnc-proxy-e2e-venv, reused when present). Everything listens and connects on 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
E2E=$ROOT/Tests/e2e

WORK=${E2E_WORK:-$(mktemp -d /tmp/vnc-proxy-e2e.XXXXXX)}
mkdir -p "$WORK/logs" "$WORK/shots"
LOGS=$WORK/logs
PIDS=$WORK/pids            # "PID NAME" per background process, each started as its own process group
: >"$PIDS"
VENV=${E2E_VENV:-/tmp/vnc-proxy-e2e-venv}
VNC_PROXY=$ROOT/.build/debug/vnc-proxy
SIMULATOR=$ROOT/.build/debug/kubevirt-simulator

# The VM console everything looks at: an 800x600 desktop whose root window is this colour.
COLOUR_NAME='#2e8b57'      # X's "sea green"
COLOUR_RGB=46,139,87
GEOMETRY=800x600
NAMESPACE=e2e-lab
VM=e2e-vm
DESKTOP=e2e-desktop

PASSED=0
FAILED=0
FAILED_NAMES=()
SUMMARY_DONE=0

say() { echo "e2e: $*"; }
die() { say "SETUP FAILED: $*"; exit 1; }

# start NAME CMD...: run in the background, in its own process group, output to $LOGS/NAME.log.
start() {
    local name=$1; shift
    setsid "$@" >"$LOGS/$name.log" 2>&1 </dev/null &
    echo "$! $name" >>"$PIDS"
}

# stop NAME: end that process group (only processes this script started), bounded.
stop() {
    local pid name
    while read -r pid name; do
        [ "$name" = "$1" ] || continue
        kill -TERM -- "-$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL -- "-$pid" 2>/dev/null || true
    done <"$PIDS"
}

dump_logs() {
    local f
    for f in "$LOGS"/*.log; do
        [ -e "$f" ] || continue
        echo "---- last 40 lines of $(basename "$f" .log) ($f)"
        # Chromium without a D-Bus complains on every start; those lines say nothing about the test.
        grep -v 'dbus/' "$f" | tail -n 40 || true
    done
}

# summary: logs on failure, the work folder, then the closing line `e2e: N passed, M failed`.
summary() {
    if [ "$FAILED" -ne 0 ]; then dump_logs; fi
    say "work folder (logs, screenshots): $WORK"
    echo "e2e: $PASSED passed, $FAILED failed"
    SUMMARY_DONE=1
}

cleanup() {
    local rc=$? pid name
    trap - EXIT INT TERM
    if [ "$SUMMARY_DONE" -eq 0 ]; then
        # Setup failed or the run was interrupted: that counts as one more failure.
        FAILED=$((FAILED + 1))
        [ "$rc" -ne 0 ] || rc=1
        summary
    fi
    # Newest first: viewers, then the proxy, the simulator, the X server.
    tac "$PIDS" 2>/dev/null | while read -r pid name; do
        kill -TERM -- "-$pid" 2>/dev/null || true
    done
    for _ in $(seq 1 50); do
        local alive=0
        while read -r pid name; do kill -0 "$pid" 2>/dev/null && alive=1; done <"$PIDS"
        [ "$alive" -eq 0 ] && break
        sleep 0.1
    done
    while read -r pid name; do kill -KILL -- "-$pid" 2>/dev/null || true; done <"$PIDS"
    rm -rf "$WORK/chrome-profile"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# wait_for DESCRIPTION SECONDS CMD...: poll CMD every 0.2 s until it succeeds, or fail.
wait_for() {
    local what=$1 seconds=$2; shift 2
    local deadline=$((SECONDS + seconds))
    until "$@" >/dev/null 2>&1; do
        if [ "$SECONDS" -ge "$deadline" ]; then say "timed out after ${seconds}s waiting for $what"; return 1; fi
        sleep 0.2
    done
}

# check NAME FUNCTION: run FUNCTION in a subshell with errexit; count it as passed or failed.
check() {
    local name=$1 rc=0; shift
    echo
    echo "== $name"
    set +e
    (set -e; "$@")
    rc=$?
    set -e
    if [ "$rc" -eq 0 ]; then
        PASSED=$((PASSED + 1)); say "PASS $name"
    else
        FAILED=$((FAILED + 1)); FAILED_NAMES+=("$name"); say "FAIL $name (exit $rc)"
    fi
}

py() { "$VENV/bin/python" "$@"; }

# ---------------------------------------------------------------------------------------------------
echo "== setup: tools"
DEBS=(tigervnc-standalone-server x11-xserver-utils x11-utils novnc chromium xdotool curl python3-venv)
missing=()
for p in "${DEBS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    say "installing Debian packages: ${missing[*]}"
    [ "$(id -u)" -eq 0 ] || die "need root to install ${missing[*]}"
    timeout 600 apt-get update -qq >"$LOGS/apt.log" 2>&1 || { tail -n 20 "$LOGS/apt.log"; die "apt-get update failed"; }
    DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -qq --no-install-recommends "${missing[@]}" \
        >>"$LOGS/apt.log" 2>&1 || { tail -n 20 "$LOGS/apt.log"; die "apt-get install failed"; }
fi
say "Debian packages present: ${DEBS[*]}"

PIP_PKGS=(vncdotool==1.4.2 websockets==17.4 lab-orchestrator-lib-auth==2.2.0)
if [ ! -x "$VENV/bin/python" ]; then
    timeout 120 python3 -m venv "$VENV" >"$LOGS/venv.log" 2>&1 || { cat "$LOGS/venv.log"; die "python3 -m venv failed"; }
fi
timeout 600 "$VENV/bin/python" -m pip install -q --disable-pip-version-check "${PIP_PKGS[@]}" >"$LOGS/pip.log" 2>&1 \
    || { tail -n 20 "$LOGS/pip.log"; die "pip install ${PIP_PKGS[*]} failed"; }
say "Python packages in $VENV: $("$VENV/bin/python" -m pip list --format=freeze 2>/dev/null \
    | grep -iE '^(vncdotool|websockets|lab-orchestrator-lib-auth|pillow|pyjwt)==' | tr '\n' ' ')"

echo "== setup: build (swift build; a no-op when up to date)"
timeout 1800 swift build >"$LOGS/build.log" 2>&1 || { tail -n 40 "$LOGS/build.log"; die "swift build failed"; }
[ -x "$VNC_PROXY" ] && [ -x "$SIMULATOR" ] || die "swift build did not produce $VNC_PROXY and $SIMULATOR"
say "binaries: $VNC_PROXY, $SIMULATOR"

# ---------------------------------------------------------------------------------------------------
echo "== setup: Xvnc (the VM's VNC server)"
DISPLAY_NUM=
for d in $(seq 42 99); do
    if [ ! -e "/tmp/.X11-unix/X$d" ] && [ ! -e "/tmp/.X$d-lock" ]; then DISPLAY_NUM=$d; break; fi
done
[ -n "$DISPLAY_NUM" ] || die "no free X display between :42 and :99"
XDISPLAY=:$DISPLAY_NUM
RFB_PORT=$(py "$E2E/helpers.py" free-port)
start xvnc Xvnc "$XDISPLAY" -geometry "$GEOMETRY" -depth 24 -desktop "$DESKTOP" \
    -SecurityTypes None -localhost -rfbport "$RFB_PORT" -nolisten tcp -AlwaysShared
wait_for "Xvnc on $XDISPLAY" 20 xdpyinfo -display "$XDISPLAY" || die "Xvnc did not start"
py "$E2E/helpers.py" wait-listen "$RFB_PORT" 10 >/dev/null || die "Xvnc does not listen on $RFB_PORT"
xsetroot -display "$XDISPLAY" -solid "$COLOUR_NAME" || die "xsetroot failed"
say "Xvnc $XDISPLAY: ${GEOMETRY}x24, no auth, rfb 127.0.0.1:$RFB_PORT, root window $COLOUR_NAME (rgb $COLOUR_RGB)"

echo "== setup: kubevirt-simulator (the Kubernetes API, TLS + bearer token)"
SA=$WORK/serviceaccount       # stands in for /var/run/secrets/kubernetes.io/serviceaccount
mkdir -p "$SA"
head -c 32 /dev/urandom | base64 | tr -d '/+=\n' >"$SA/token"
echo "$NAMESPACE" >"$SA/namespace"
SIM_PORT=$(py "$E2E/helpers.py" free-port)
start simulator "$SIMULATOR" --host 127.0.0.1 --port "$SIM_PORT" --token-file "$SA/token" \
    --ca-out "$SA/ca.crt" --vmi "$NAMESPACE/$VM=127.0.0.1:$RFB_PORT"
wait_for "the simulator's listening line" 20 grep -q "listening on wss://127.0.0.1:$SIM_PORT" "$LOGS/simulator.log" \
    || die "kubevirt-simulator did not start"
[ -s "$SA/ca.crt" ] || die "the simulator wrote no CA to $SA/ca.crt"
say "$(grep -m1 'listening on' "$LOGS/simulator.log"); VMI $NAMESPACE/$VM -> Xvnc 127.0.0.1:$RFB_PORT"

echo "== setup: vnc-proxy serve (configured as in a pod)"
SECRET=e2e-secret-$(head -c 48 /dev/urandom | base64 | tr -d '/+=\n')
PROXY_PORT=$(py "$E2E/helpers.py" free-port)
PROXY=127.0.0.1:$PROXY_PORT
start proxy env SECRET_KEY="$SECRET" KUBERNETES_SERVICE_HOST=127.0.0.1 KUBERNETES_SERVICE_PORT="$SIM_PORT" \
    HOST=127.0.0.1 PORT="$PROXY_PORT" LOGLEVEL=info \
    "$VNC_PROXY" serve --ca-file "$SA/ca.crt" --token-file "$SA/token" --web /usr/share/novnc
wait_for "vnc-proxy /healthz" 20 curl -fsS --max-time 2 "http://$PROXY/healthz" || die "vnc-proxy did not become healthy"
say "vnc-proxy on ws://$PROXY, upstream wss://127.0.0.1:$SIM_PORT, CA and token from $SA, web root /usr/share/novnc"

echo "== setup: static web server for noVNC and headless Chromium"
WWW=$WORK/www
mkdir -p "$WWW"
for f in /usr/share/novnc/*; do ln -sfn "$f" "$WWW/$(basename "$f")"; done
ln -sfn "$ROOT/examples/novnc.html" "$WWW/novnc.html"
HTTP_PORT=$(py "$E2E/helpers.py" free-port)
start web python3 -m http.server --bind 127.0.0.1 --directory "$WWW" "$HTTP_PORT"
wait_for "the static web server" 15 curl -fsS --max-time 2 -o /dev/null "http://127.0.0.1:$HTTP_PORT/vnc_lite.html" \
    || die "the static web server did not start"
NOVNC_VERSION=$(dpkg-query -W -f='${Version}' novnc)
say "noVNC $NOVNC_VERSION from /usr/share/novnc and examples/novnc.html on http://127.0.0.1:$HTTP_PORT/"

# Only 127.0.0.1 is reachable: every host name resolves to nothing, background services are off.
start chromium chromium --headless --no-sandbox --disable-gpu --disable-dev-shm-usage \
    --user-data-dir="$WORK/chrome-profile" --remote-debugging-address=127.0.0.1 --remote-debugging-port=0 \
    --no-first-run --no-default-browser-check --disable-extensions --disable-sync \
    --disable-background-networking --disable-component-update --disable-default-apps \
    --disable-domain-reliability --disable-client-side-phishing-detection --no-pings \
    --metrics-recording-only --host-resolver-rules='MAP * ~NOTFOUND, EXCLUDE 127.0.0.1' --hide-scrollbars about:blank
DEVTOOLS=$WORK/chrome-profile/DevToolsActivePort
wait_for "Chromium's DevTools port" 30 test -s "$DEVTOOLS" || die "Chromium did not start"
say "$(chromium --version 2>/dev/null | head -n 1), DevTools on 127.0.0.1:$(head -n 1 "$DEVTOOLS")"

# Tokens, minted by the proxy's own CLI the way LabOrchestrator would.
TOKEN=$("$VNC_PROXY" token --secret "$SECRET" --namespace "$NAMESPACE" --vm "$VM" --expires-in 3600) \
    || die "vnc-proxy token failed"
EXPIRED_TOKEN=$("$VNC_PROXY" token --secret "$SECRET" --namespace "$NAMESPACE" --vm "$VM" --expires-in=-120) \
    || die "vnc-proxy token --expires-in=-120 failed"
TOKENS_FILE=$WORK/tokens    # every token of the run, one a line, for the final log check
printf '%s\n' "$TOKEN" "$EXPIRED_TOKEN" >"$TOKENS_FILE"
say "tokens minted with vnc-proxy token for $NAMESPACE/$VM: one valid for 1 h, one expired 2 min ago"

# The token goes after '#', so the static web server's log never sees it (noVNC reads both).
vnc_lite_url() { echo "http://127.0.0.1:$HTTP_PORT/vnc_lite.html?host=127.0.0.1&port=$PROXY_PORT#&path=$1/$2"; }
proxy_lines() { wc -l <"$LOGS/proxy.log"; }
new_proxy_lines() { tail -n +"$(($1 + 1))" "$LOGS/proxy.log"; }
# proxy_logged_since LINECOUNT PATTERN: the proxy logged a line matching PATTERN after LINECOUNT lines.
proxy_logged_since() { new_proxy_lines "$1" | grep -q -- "$2"; }

# browser NAME URL EXPECT [cdp.py options]: open URL in a tab, print cdp.py's JSON, leave it in $WORK.
browser() {
    local name=$1 url=$2 expect=$3; shift 3
    local rc=0
    py "$E2E/cdp.py" --devtools-port-file "$DEVTOOLS" --url "$url" --expect "$expect" --timeout 20 "$@" \
        >"$WORK/$name.json" || rc=$?
    say "browser saw: $(cat "$WORK/$name.json")"
    return "$rc"
}
# canvas_rect JSON: where noVNC drew the framebuffer in the screenshot, as X,Y,W,H, 2 px in from each
# edge (the canvas may sit at a fractional offset, so its outermost rows blend with the page).
canvas_rect() {
    json "$1" '"%d,%d,%d,%d" % (round(d["canvas"]["x"]) + 2, round(d["canvas"]["y"]) + 2, round(d["canvas"]["width"]) - 4, round(d["canvas"]["height"]) - 4)'
}
json() { py -c 'import json,sys; print(eval(sys.argv[2], {"d": json.load(open(sys.argv[1]))}))' "$@"; }

# ---------------------------------------------------------------------------------------------------
check_xvnc_direct() {
    local png=$WORK/shots/xvnc-direct.png
    timeout 30 "$VENV/bin/vncdo" -s "127.0.0.1::$RFB_PORT" -t 20 capture "$png"
    say "vncdotool straight to Xvnc (no proxy) captured $png"
    py "$E2E/helpers.py" colour "$png" "$COLOUR_RGB" --size "$GEOMETRY"
}

check_novnc_lite() {
    local before png=$WORK/shots/novnc-vnc_lite.png
    before=$(proxy_lines)
    browser novnc-lite "$(vnc_lite_url "$TOKEN" "$VM")" connected --screenshot "$png" --wait-rgb "$COLOUR_RGB"
    local status rect fb
    status=$(json "$WORK/novnc-lite.json" 'd["status"]')
    [ "$status" = "Connected to $DESKTOP" ] || { say "status is '$status', expected 'Connected to $DESKTOP'"; return 1; }
    say "noVNC status bar: '$status'"
    fb=$(json "$WORK/novnc-lite.json" '"%dx%d" % (d["canvas"]["fb_width"], d["canvas"]["fb_height"])')
    [ "$fb" = "$GEOMETRY" ] || { say "noVNC framebuffer is $fb, expected $GEOMETRY"; return 1; }
    rect=$(canvas_rect "$WORK/novnc-lite.json")
    say "noVNC framebuffer ${fb} drawn at x,y,w,h = $rect in the screenshot $png"
    py "$E2E/helpers.py" colour "$png" "$COLOUR_RGB" --rect "$rect"
    wait_for "the proxy's session log line" 5 proxy_logged_since "$before" "vm=$VM .*session started"
    say "proxy log: $(new_proxy_lines "$before" | grep -m1 'session started')"
}

check_novnc_example() {
    local png=$WORK/shots/examples-novnc.png url
    url="http://127.0.0.1:$HTTP_PORT/novnc.html#host=127.0.0.1&port=$PROXY_PORT&token=$TOKEN&vm=$VM"
    browser examples-novnc "$url" connected --screenshot "$png" --wait-rgb "$COLOUR_RGB"
    local status rect
    status=$(json "$WORK/examples-novnc.json" 'd["status"]')
    [ "$status" = "Connected to $DESKTOP" ] || { say "status is '$status'"; return 1; }
    rect=$(canvas_rect "$WORK/examples-novnc.json")
    say "examples/novnc.html status '$status', framebuffer at $rect in $png"
    py "$E2E/helpers.py" colour "$png" "$COLOUR_RGB" --rect "$rect"
    # The other form of its parameters: one url=ws://HOST:PORT/TOKEN/VM.
    browser examples-novnc-url "http://127.0.0.1:$HTTP_PORT/novnc.html#url=ws://$PROXY/$TOKEN/$VM" connected \
        --wait-rgb "$COLOUR_RGB"
    say "examples/novnc.html#url=ws://$PROXY/<token>/$VM: '$(json "$WORK/examples-novnc-url.json" 'd["status"]')'"
}

# The proxy's own page: noVNC from the proxy's web root, the token after '#' (never sent), handed over
# in the bearer subprotocol; the page must drop it from the address bar and break none of its CSP.
check_console_page() {
    local before png=$WORK/shots/console-page.png status fb rect location violations line
    before=$(proxy_lines)
    browser console-page "http://$PROXY/vnc?vm=$VM#token=$TOKEN" connected --screenshot "$png" --wait-rgb "$COLOUR_RGB"
    status=$(json "$WORK/console-page.json" 'd["status"]')
    [ "$status" = "Connected to $DESKTOP" ] || { say "status is '$status', expected 'Connected to $DESKTOP'"; return 1; }
    fb=$(json "$WORK/console-page.json" '"%dx%d" % (d["canvas"]["fb_width"], d["canvas"]["fb_height"])')
    [ "$fb" = "$GEOMETRY" ] || { say "framebuffer is $fb, expected $GEOMETRY"; return 1; }
    rect=$(canvas_rect "$WORK/console-page.json")
    say "/vnc status '$status', framebuffer $fb at x,y,w,h = $rect in $png"
    py "$E2E/helpers.py" colour "$png" "$COLOUR_RGB" --rect "$rect"
    location=$(json "$WORK/console-page.json" 'd["location"]')
    [ "$location" = "http://$PROXY/vnc?vm=$VM" ] || { say "the address bar still says $location"; return 1; }
    say "address bar after connecting: $location (token gone)"
    violations=$(json "$WORK/console-page.json" '[e for e in d["console_errors"] if "Content Security Policy" in e]')
    [ "$violations" = "[]" ] || { say "CSP violations: $violations"; return 1; }
    say "no Content-Security-Policy violations in the page's console"
    wait_for "the proxy's session log line" 5 proxy_logged_since "$before" "vm=$VM .*session started"
    line=$(new_proxy_lines "$before" | grep -m1 'session started')
    say "proxy log: $line"
    # The page offers binary next to the bearer subprotocol; the proxy echoes binary, never the token.
    [[ $line == *"subprotocol=binary"* ]] || { say "expected subprotocol=binary in that line"; return 1; }
    # Refused (an expired token): the page says so instead of hanging on "Connecting".
    browser console-page-expired "http://$PROXY/vnc?vm=$VM#token=$EXPIRED_TOKEN" failed
    status=$(json "$WORK/console-page-expired.json" 'd["status"]')
    [[ $status == "Disconnected: the proxy refused the connection (code 1006)."* ]] \
        || { say "with an expired token the status is '$status'"; return 1; }
    say "with an expired token: '$status'"
}

# vnc-proxy connect is started once, by the first check that needs it; its port is kept in a file
# because each check runs in a subshell.
connect_port() {
    [ -s "$WORK/connect.port" ] || start_connect >&2
    cat "$WORK/connect.port"
}
start_connect() {
    # `vnc-proxy help UNKNOWN` prints the top-level help and exits 0, so look for connect's own usage.
    "$VNC_PROXY" help connect >"$WORK/connect-help.txt" 2>&1 || true
    if ! grep -q 'USAGE: vnc-proxy connect ' "$WORK/connect-help.txt"; then
        say "vnc-proxy has no 'connect' subcommand; this step needs"
        say "  vnc-proxy connect ws://127.0.0.1:P/TOKEN/VM --listen 127.0.0.1:PORT"
        say "vnc-proxy help connect printed no connect usage: $(head -n 3 "$WORK/connect-help.txt" | tr '\n' ' ')"
        return 1
    fi
    local port
    port=$(py "$E2E/helpers.py" free-port)
    start connect "$VNC_PROXY" connect "ws://$PROXY/$TOKEN/$VM" --listen "127.0.0.1:$port" --ca-file "$SA/ca.crt"
    py "$E2E/helpers.py" wait-listen "$port" 15 >&2
    echo "$port" >"$WORK/connect.port"
    say "vnc-proxy connect listens on 127.0.0.1:$port for native viewers" >&2
}

check_vncdo_capture() {
    local port png=$WORK/shots/vncdo-via-connect.png
    port=$(connect_port)
    timeout 30 "$VENV/bin/vncdo" -s "127.0.0.1::$port" -t 20 capture "$png"
    say "vncdotool through vnc-proxy connect -> proxy -> simulator -> Xvnc captured $png"
    py "$E2E/helpers.py" colour "$png" "$COLOUR_RGB" --size "$GEOMETRY"
}

# A small X client on the VM's display that logs the keys it receives: xev, focused.
start_key_probe() {
    local name=$1
    # stdbuf: xev's stdout is a file, so make it line-buffered and readable while xev runs.
    start "$name" stdbuf -oL xev -display "$XDISPLAY" -geometry 160x120+0+0 -name "$name" -event keyboard
    local wid
    wid=$(DISPLAY=$XDISPLAY timeout 10 xdotool search --sync --onlyvisible --name "^$name\$" | head -n 1)
    [ -n "$wid" ] || { say "the xev window $name did not appear"; return 1; }
    DISPLAY=$XDISPLAY timeout 10 xdotool windowfocus --sync "$wid"
    say "xev ($name, window $wid) has the keyboard focus on $XDISPLAY"
}

check_keys_vncdo() {
    local port
    port=$(connect_port)
    start_key_probe keys-vncdo
    timeout 30 "$VENV/bin/vncdo" -s "127.0.0.1::$port" -t 20 type vncdotyped
    say "vncdotool typed 'vncdotyped' through vnc-proxy connect"
    wait_for "xev to log the keys" 10 py "$E2E/helpers.py" xev-keys "$LOGS/keys-vncdo.log" vncdotyped || true
    py "$E2E/helpers.py" xev-keys "$LOGS/keys-vncdo.log" vncdotyped
    stop keys-vncdo
}

check_keys_novnc() {
    start_key_probe keys-novnc
    browser novnc-keys "$(vnc_lite_url "$TOKEN" "$VM")" connected --keys novnctyped
    say "noVNC (vnc_lite.html in Chromium) typed 'novnctyped' into its canvas"
    wait_for "xev to log the keys" 10 py "$E2E/helpers.py" xev-keys "$LOGS/keys-novnc.log" novnctyped || true
    py "$E2E/helpers.py" xev-keys "$LOGS/keys-novnc.log" novnctyped
    stop keys-novnc
}

# refused_in_browser NAME TOKEN VM OUTCOME STATUS: noVNC shows a failure, the proxy logs why, not the token.
refused_in_browser() {
    local name=$1 token=$2 vm=$3 outcome=$4 code=$5 before png=$WORK/shots/$1.png
    before=$(proxy_lines)
    browser "$name" "$(vnc_lite_url "$token" "$vm")" failed --screenshot "$png"
    say "noVNC status bar: '$(json "$WORK/$name.json" 'd["status"]')' (history: $(json "$WORK/$name.json" 'd["status_history"]')); screenshot $png"
    wait_for "the proxy's refusal log line" 5 proxy_logged_since "$before" "outcome=$outcome" \
        || { say "no 'outcome=$outcome' in the proxy's new log lines:"; new_proxy_lines "$before"; return 1; }
    local line
    line=$(new_proxy_lines "$before" | grep -m1 "outcome=$outcome")
    say "proxy log: $line"
    [[ $line == *"status=$code"* ]] || { say "expected status=$code in that line"; return 1; }
    [[ $line == *"request refused"* ]] || { say "expected 'request refused' in that line"; return 1; }
    if grep -qF -e "$token" -e "${token##*.}" "$LOGS/proxy.log"; then
        say "the proxy's log contains the token (or its signature)"; return 1
    fi
    say "the token (and its signature) appear nowhere in the proxy's log"
}

check_expired() { refused_in_browser novnc-expired "$EXPIRED_TOKEN" "$VM" token_expired 401; }
check_wrong_vm() { refused_in_browser novnc-wrong-vm "$TOKEN" other-vm vm_not_allowed 403; }

check_curl_probe() {
    bash "$ROOT/examples/curl-probe.sh" "http://$PROXY" "$TOKEN" "$VM"
}

check_mint_token() {
    py "$ROOT/examples/mint-token.py" --secret "$SECRET" --namespace "$NAMESPACE" --vm "$VM" --proxy "ws://$PROXY" \
        | tee "$WORK/mint-token.out"
    py "$ROOT/examples/mint-token.py" --secret "$SECRET" --namespace "$NAMESPACE" --vm "$VM" --token-only >>"$TOKENS_FILE"
}

check_examples_demo() {
    VNC_PROXY=$VNC_PROXY PYTHON=$VENV/bin/python timeout 120 bash "$ROOT/examples/check.sh"
}

check_no_token_in_logs() {
    local t n=0
    # Every process's log: the proxy and the simulator, but also connect (it prints <token>) and the
    # static web server (the pages get their token after '#').
    while read -r t; do
        if grep -lF -e "$t" "$LOGS"/*.log; then say "a token appears in the log(s) above"; return 1; fi
        n=$((n + 1))
    done <"$TOKENS_FILE"
    local refused sessions
    refused=$(grep -c 'request refused' "$LOGS/proxy.log" || true)
    sessions=$(grep -c 'session started' "$LOGS/proxy.log" || true)
    say "none of the $n tokens appears in any log in $LOGS; the proxy logged $sessions sessions and $refused refusals"
}

check "Xvnc shows $COLOUR_NAME to vncdotool directly (baseline, no proxy)" check_xvnc_direct
check "noVNC vnc_lite.html in Chromium connects through the proxy and shows $COLOUR_NAME" check_novnc_lite
check "examples/novnc.html in Chromium connects through the proxy and shows $COLOUR_NAME" check_novnc_example
check "the proxy's /vnc page (--web /usr/share/novnc) connects in Chromium and shows $COLOUR_NAME" check_console_page
check "vncdotool captures $COLOUR_NAME through vnc-proxy connect" check_vncdo_capture
check "keys typed with vncdotool through vnc-proxy connect reach the X server" check_keys_vncdo
check "keys typed in noVNC reach the X server" check_keys_novnc
check "noVNC with an expired token shows a failure; the proxy logs token_expired, not the token" check_expired
check "noVNC with a VM the token does not allow shows a failure; the proxy logs vm_not_allowed" check_wrong_vm
check "examples/curl-probe.sh against the e2e proxy (101 + RFB, 401 + JSON)" check_curl_probe
check "examples/mint-token.py (lab-orchestrator-lib-auth token) reads RFB 003.008 through the proxy" check_mint_token
check "examples/check.sh: curl-probe.sh and mint-token.py against vnc-proxy demo" check_examples_demo
check "no token in any log" check_no_token_in_logs

echo
if [ "$FAILED" -ne 0 ]; then
    say "failed checks:"
    for n in "${FAILED_NAMES[@]}"; do say "  - $n"; done
fi
summary
[ "$FAILED" -eq 0 ]
