#!/usr/bin/env python3
"""Drive a headless Chromium over the Chrome DevTools protocol (CDP) for the e2e suite.

One run opens a new tab on a noVNC page, waits (bounded) until the page's status text says what is
expected, and optionally types keys into the noVNC canvas and saves a screenshot of the viewport.
It prints one JSON object: the status text and its history, the canvas rectangle in screenshot
pixels, the websocket events Chromium saw, the page's address at the end, the errors its console
showed (Content-Security-Policy violations among them), and the screenshot path.

    cdp.py --devtools-port-file DIR/DevToolsActivePort --url URL --expect connected|failed \
           [--screenshot OUT.png] [--wait-rgb R,G,B] [--keys TEXT] [--timeout SECONDS]

Exit status: 0 when the expectation was met, 1 when it was not (the JSON says what was seen),
2 on a usage or browser error. Needs the `websockets` package (>= 12, asyncio client).
"""
import argparse
import asyncio
import base64
import json
import sys
import time
import urllib.parse
import urllib.request

import websockets

# What noVNC's pages (vnc_lite.html, examples/novnc.html) write into #status.
CONNECTED_PREFIX = "Connected to"
FAILURE_TEXTS = ("Something went wrong", "Disconnected", "Failed")

# Records every text #status shows, so a transient "Connected" cannot slip by between two polls.
STATUS_RECORDER = r"""
(() => {
  window.__e2eStatus = [];
  const hook = () => {
    const el = document.getElementById('status');
    if (!el) { return false; }
    const push = () => {
      const t = el.textContent;
      if (window.__e2eStatus[window.__e2eStatus.length - 1] !== t) { window.__e2eStatus.push(t); }
    };
    push();
    new MutationObserver(push).observe(el, {childList: true, characterData: true, subtree: true});
    return true;
  };
  if (!hook()) { document.addEventListener('DOMContentLoaded', hook); }
})();
"""

CANVAS_INFO = r"""
(() => {
  const c = document.querySelector('canvas');
  if (!c) { return null; }
  const r = c.getBoundingClientRect();
  let center = null;
  try {
    const ctx = c.getContext('2d');
    const d = ctx.getImageData(Math.floor(c.width / 2), Math.floor(c.height / 2), 1, 1).data;
    center = [d[0], d[1], d[2], d[3]];
  } catch (e) { center = String(e); }
  return {x: r.left, y: r.top, width: r.width, height: r.height,
          fb_width: c.width, fb_height: c.height, center: center};
})()
"""


class CDP:
    def __init__(self, ws):
        self.ws = ws
        self.next_id = 0
        self.pending = {}
        self.events = []
        self.reader = asyncio.create_task(self._read())

    async def _read(self):
        async for raw in self.ws:
            msg = json.loads(raw)
            if "id" in msg and msg["id"] in self.pending:
                self.pending.pop(msg["id"]).set_result(msg)
            elif "method" in msg:
                self.events.append(msg)

    async def call(self, method, timeout=15, **params):
        self.next_id += 1
        fut = asyncio.get_running_loop().create_future()
        self.pending[self.next_id] = fut
        await self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        msg = await asyncio.wait_for(fut, timeout)
        if "error" in msg:
            raise RuntimeError(f"{method}: {msg['error']}")
        return msg.get("result", {})

    async def evaluate(self, expression):
        res = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return res.get("result", {}).get("value")


def devtools_port(port_file, timeout):
    deadline = time.monotonic() + timeout
    while True:
        try:
            with open(port_file) as f:
                first = f.readline().strip()
            if first:
                return int(first)
        except (FileNotFoundError, ValueError):
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"cdp.py: no DevTools port in {port_file} after {timeout}s")
        time.sleep(0.1)


def http_json(url, method="GET"):
    req = urllib.request.Request(url, method=method)
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read().decode())


def console_errors(events):
    """Error messages from the page's console and from the browser about the page (CSP reports come this way)."""
    out = []
    for e in events:
        m, p = e["method"], e.get("params", {})
        if m == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
            out.append(p["entry"].get("text", ""))
        elif m == "Runtime.consoleAPICalled" and p.get("type") == "error":
            out.append(" ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", [])))
        elif m == "Runtime.exceptionThrown":
            details = p.get("exceptionDetails", {})
            out.append(details.get("exception", {}).get("description") or details.get("text", ""))
    return out


def ws_events(events):
    """The websocket part of what Chromium's Network domain reported (URLs with the path cut off)."""
    out = []
    for e in events:
        m, p = e["method"], e.get("params", {})
        if m == "Network.webSocketCreated":
            u = urllib.parse.urlsplit(p.get("url", ""))
            out.append({"event": "created", "url": f"{u.scheme}://{u.netloc}/..."})
        elif m == "Network.webSocketHandshakeResponseReceived":
            r = p.get("response", {})
            out.append({"event": "handshake_response", "status": r.get("status"),
                        "statusText": r.get("statusText")})
        elif m == "Network.webSocketFrameError":
            out.append({"event": "frame_error", "message": p.get("errorMessage")})
        elif m == "Network.webSocketClosed":
            out.append({"event": "closed"})
    return out


async def key_events(cdp, text):
    for ch in text:
        if not (ch.isascii() and ch.isalnum()):
            raise SystemExit(f"cdp.py: --keys supports letters and digits only, not {ch!r}")
        code = f"Key{ch.upper()}" if ch.isalpha() else f"Digit{ch}"
        vk = ord(ch.upper())
        common = dict(key=ch, code=code, windowsVirtualKeyCode=vk, nativeVirtualKeyCode=vk)
        await cdp.call("Input.dispatchKeyEvent", type="keyDown", text=ch, unmodifiedText=ch, **common)
        await cdp.call("Input.dispatchKeyEvent", type="keyUp", **common)
        await asyncio.sleep(0.05)


def rgb_close(px, rgb, tol=8):
    return isinstance(px, list) and all(abs(a - b) <= tol for a, b in zip(px[:3], rgb))


async def run(args):
    port = devtools_port(args.devtools_port_file, args.timeout)
    base = f"http://127.0.0.1:{port}"
    target = http_json(f"{base}/json/new?about:blank", method="PUT")
    result = {"expect": args.expect, "ok": False}
    try:
        async with websockets.connect(target["webSocketDebuggerUrl"], max_size=64 * 1024 * 1024,
                                      open_timeout=10) as ws:
            cdp = CDP(ws)
            await cdp.call("Page.enable")
            await cdp.call("Runtime.enable")
            await cdp.call("Network.enable")
            await cdp.call("Log.enable")
            await cdp.call("Emulation.setDeviceMetricsOverride", width=args.width, height=args.height,
                           deviceScaleFactor=1, mobile=False)
            await cdp.call("Page.addScriptToEvaluateOnNewDocument", source=STATUS_RECORDER)
            nav = await cdp.call("Page.navigate", url=args.url)
            if nav.get("errorText"):
                raise RuntimeError(f"the page did not load: {nav['errorText']}")

            deadline = time.monotonic() + args.timeout
            history, status = [], None
            while time.monotonic() < deadline:
                history = await cdp.evaluate("window.__e2eStatus || []") or []
                status = history[-1] if history else None
                ever_connected = any(h.startswith(CONNECTED_PREFIX) for h in history)
                if args.expect == "connected" and status and status.startswith(CONNECTED_PREFIX):
                    result["ok"] = True
                    break
                if args.expect == "failed" and status and any(f in status for f in FAILURE_TEXTS):
                    result["ok"] = not ever_connected
                    break
                await asyncio.sleep(0.1)

            canvas = None
            if result["ok"] and args.expect == "connected":
                # The status flips to connected at ServerInit; wait for the first framebuffer update.
                want = [int(v) for v in args.wait_rgb.split(",")] if args.wait_rgb else None
                while time.monotonic() < deadline:
                    canvas = await cdp.evaluate(CANVAS_INFO)
                    if canvas and canvas["fb_width"] > 0 and (
                            want is None and isinstance(canvas["center"], list) and canvas["center"][3] > 0
                            or want is not None and rgb_close(canvas["center"], want)):
                        break
                    await asyncio.sleep(0.1)
                if args.keys:
                    await cdp.evaluate("document.querySelector('canvas').focus()")
                    await key_events(cdp, args.keys)
                    await asyncio.sleep(0.5)  # let noVNC flush its key events before the tab closes
                    result["keys_sent"] = args.keys
                # Settle, then read the canvas again so the reported rectangle is the final layout.
                await asyncio.sleep(0.3)
                canvas = await cdp.evaluate(CANVAS_INFO)
            else:
                canvas = await cdp.evaluate(CANVAS_INFO)

            if args.screenshot:
                shot = await cdp.call("Page.captureScreenshot", format="png", timeout=30)
                with open(args.screenshot, "wb") as f:
                    f.write(base64.b64decode(shot["data"]))
                result["screenshot"] = args.screenshot

            result.update(status=status, status_history=history, canvas=canvas,
                          websocket=ws_events(cdp.events), location=await cdp.evaluate("location.href"),
                          console_errors=console_errors(cdp.events))
            cdp.reader.cancel()
    finally:
        try:
            urllib.request.urlopen(f"{base}/json/close/{target['id']}", timeout=5).read()
        except Exception:
            pass
    return result


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--devtools-port-file", required=True)
    p.add_argument("--url", required=True)
    p.add_argument("--expect", choices=["connected", "failed"], required=True)
    p.add_argument("--screenshot")
    p.add_argument("--wait-rgb", help="wait until the canvas centre has this colour (R,G,B)")
    p.add_argument("--keys", help="letters/digits to type into the noVNC canvas once connected")
    p.add_argument("--timeout", type=float, default=20)
    p.add_argument("--width", type=int, default=1024)
    p.add_argument("--height", type=int, default=768)
    args = p.parse_args()
    try:
        result = asyncio.run(run(args))
    except Exception as e:  # a browser or protocol error, not an unmet expectation
        print(json.dumps({"ok": False, "error": f"{type(e).__name__}: {e}"}))
        return 2
    print(json.dumps(result))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
