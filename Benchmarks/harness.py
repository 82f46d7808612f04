#!/usr/bin/env python3
"""Benchmarks vnc-proxy side by side with nginx, the original Python proxy and a direct connection.

Run through `bash Benchmarks/run.sh` (which builds the release binaries and the Python venv first).
Every peer sits between the same load generator (`vncbench load`, SwiftNIO) and the same upstream
(`vncbench upstream`: the project's KubeVirt simulator over TLS). Peers are pinned to one CPU, the
upstream and the load generator to the other. Results go to RESULTS.md (or --out).
"""
import argparse
import datetime
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
SECRET = "benchmark-secret-0123456789abcdef0123456789abcdef"
API_PATH = "/apis/subresources.kubevirt.io/v1/namespaces/ns/virtualmachineinstances"
PEERS = ["vnc-proxy", "nginx", "nginx-noreuse", "python", "direct"]
# nginx-noreuse is nginx with `proxy_ssl_session_reuse off`: it differs from nginx only in the upstream TLS
# handshake, so it runs the handshake scenario only.
ONLY = {"nginx-noreuse": {"handshake"}}

FULL = dict(duration=3.0, runs=5, warmup=1, rtt_levels=[1, 100, 1000], rtt_rate=10.0,
            hold_sessions=9900, hold_runs=5, handshake_workers=64, connect_concurrency=32, settle=2.0, pause=1.0)
SMOKE = dict(duration=0.3, runs=5, warmup=1, rtt_levels=[1, 10, 50], rtt_rate=10.0,
             hold_sessions=100, hold_runs=1, handshake_workers=8, connect_concurrency=16, settle=0.5, pause=0.3)


def log(text):
    print(f"[harness {time.strftime('%H:%M:%S')}] {text}", flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc=None, timeout=20.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {port} after {timeout} s")


def children(pid):
    kids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            kids.append(int(entry))
    return kids


def stop(proc, timeout=15.0):
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def run_text(command):
    try:
        return subprocess.run(command, shell=True, capture_output=True, text=True, timeout=30).stdout.strip()
    except Exception:  # noqa: BLE001 - description only
        return ""


class Harness:
    def __init__(self, args):
        self.args = args
        self.p = dict(SMOKE if args.smoke else FULL)
        for item in args.set:
            key, _, value = item.partition("=")
            if key not in self.p:
                raise SystemExit(f"--set: unknown key {key}; known: {', '.join(self.p)}")
            old = self.p[key]
            self.p[key] = [int(v) for v in value.split(",")] if isinstance(old, list) else type(old)(value)
        self.work = tempfile.mkdtemp(prefix="vncbench-")
        self.token_file = os.path.join(self.work, "sa-token")
        self.ca_file = os.path.join(self.work, "ca.crt")
        with open(self.token_file, "w") as f:
            f.write("benchmark-service-account-token")  # no newline: the Python proxy sends it as read
        self.upstream = None
        self.upstream_port = None
        self.plain_upstream = None
        self.plain_upstream_port = None
        self.created_sa_dir = False
        self.python_mode = "tls"
        self.results = {}
        self.notes = []
        self.logf = open(os.path.join(self.work, "harness.log"), "w")

    def peer_threads(self):
        """One event loop per CPU the peer may run on, as nginx runs one worker per CPU."""
        if self.args.no_pin:
            return os.cpu_count() or 1
        count = 0
        for part in self.args.peer_cpus.split(","):
            low, _, high = part.partition("-")
            count += int(high or low) - int(low) + 1
        return count

    def pin(self, cpus):
        if not self.args.no_pin and shutil.which("taskset"):
            return ["taskset", "-c", cpus]
        return []

    # -- upstream ---------------------------------------------------------------------------

    def start_upstream(self, tls=True):
        port_file = os.path.join(self.work, f"upstream-{'tls' if tls else 'plain'}.port")
        echo = max(self.p["hold_sessions"], max(self.p["rtt_levels"])) + 60
        command = self.pin(self.args.load_cpus) + [
            self.args.vncbench, "upstream", "--port", "0", "--port-file", port_file, "--echo", str(echo)]
        if tls:
            command += ["--ca-out", self.ca_file, "--token-file", self.token_file]
        else:
            command += ["--no-tls"]  # like `kubectl proxy`: local-dev mode sends no credentials
        proc = subprocess.Popen(command, stdout=self.logf, stderr=self.logf)
        deadline = time.time() + 30
        while not os.path.exists(port_file):
            if proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("upstream did not start; see " + self.logf.name)
            time.sleep(0.05)
        port = int(open(port_file).read())
        wait_port(port, proc)
        log(f"upstream ({'TLS' if tls else 'plain ws'}) pid {proc.pid} on {port}")
        return proc, port

    # -- peers -----------------------------------------------------------------------------

    def start_peer(self, name):
        """Starts a peer; returns (process or None, url, target kind, pids to watch)."""
        if name == "direct":
            return None, f"wss://127.0.0.1:{self.upstream_port}", "direct", []
        port = free_port()
        pin = self.pin(self.args.peer_cpus)
        if name == "vnc-proxy":
            command = pin + [self.args.vnc_proxy, "serve", "--secret-key", SECRET,
                             "--remote-url", f"wss://127.0.0.1:{self.upstream_port}",
                             "--ca-file", self.ca_file, "--token-file", self.token_file,
                             "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
                             "--threads", str(self.peer_threads())]
        elif name in ("nginx", "nginx-noreuse"):
            conf = self.nginx_conf(port, session_reuse=(name == "nginx"))
            command = pin + ["nginx", "-p", self.work, "-c", conf]
        elif name == "python":
            if self.python_mode == "tls":
                remote = ["--remote-url", f"wss://127.0.0.1:{self.upstream_port}"]
            else:
                remote = ["--remote-url", f"ws://127.0.0.1:{self.plain_upstream_port}", "--local-dev-mode"]
            command = pin + [self.args.python, os.path.join(HERE, "py_proxy.py"), "--secret", SECRET,
                             "--host", "127.0.0.1", "--port", str(port)] + remote
        else:
            raise ValueError(name)
        proc = subprocess.Popen(command, stdout=self.logf, stderr=self.logf)
        wait_port(port, proc)
        pids = [proc.pid]
        if name.startswith("nginx"):
            time.sleep(0.3)
            pids += children(proc.pid)
        return proc, f"ws://127.0.0.1:{port}", "proxy", pids

    def nginx_conf(self, port, session_reuse=True):
        path = os.path.join(self.work, "nginx.conf")
        for sub in ("logs", "tmp"):
            os.makedirs(os.path.join(self.work, sub), exist_ok=True)
        with open(self.token_file) as f:
            bearer = f.read().strip()
        up = self.upstream_port
        text = f"""# generated by Benchmarks/harness.py
daemon off;
master_process on;
worker_processes 1;
worker_rlimit_nofile 20000;
pid {self.work}/nginx.pid;
error_log {self.work}/logs/nginx-error.log warn;
events {{ worker_connections 40000; }}
http {{
    access_log off;
    client_body_temp_path {self.work}/tmp/body;
    proxy_temp_path {self.work}/tmp/proxy;
    fastcgi_temp_path {self.work}/tmp/fastcgi;
    uwsgi_temp_path {self.work}/tmp/uwsgi;
    scgi_temp_path {self.work}/tmp/scgi;
    map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        # /TOKEN/VM -> the VNC subresource of VM (nginx checks no token: it is the floor of a proxy)
        location ~ ^/[^/]+/[a-z0-9-]+$ {{
            rewrite ^/[^/]+/([a-z0-9-]+)$ {API_PATH}/$1/vnc break;
            proxy_pass https://127.0.0.1:{up};
            proxy_http_version 1.1;
            proxy_set_header Host 127.0.0.1:{up};
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header Authorization "Bearer {bearer}";
            proxy_buffering off;
            proxy_read_timeout 3600s;
            proxy_send_timeout 3600s;
            proxy_ssl_trusted_certificate {self.ca_file};
            proxy_ssl_verify on;
            proxy_ssl_name localhost;
            proxy_ssl_session_reuse {'on' if session_reuse else 'off'};
        }}
    }}
}}
"""
        with open(path, "w") as f:
            f.write(text)
        return path

    def provide_service_account(self):
        """The Python proxy reads fixed paths: create them if absent (removed at the end), else use dev mode."""
        if os.path.exists(SA_DIR):
            self.python_mode = "dev"
            self.notes.append(f"{SA_DIR} already existed, so the Python proxy ran in local-dev mode against a "
                              "plain ws:// simulator (no upstream TLS): its numbers flatter it.")
            return
        try:
            os.makedirs(SA_DIR)
        except OSError as error:
            self.python_mode = "dev"
            self.notes.append(f"could not create {SA_DIR} ({error}); the Python proxy ran in local-dev mode "
                              "against a plain ws:// simulator (no upstream TLS): its numbers flatter it.")
            return
        self.created_sa_dir = True
        shutil.copy(self.ca_file, os.path.join(SA_DIR, "ca.crt"))
        shutil.copy(self.token_file, os.path.join(SA_DIR, "token"))

    def cleanup(self):
        stop(self.upstream)
        stop(self.plain_upstream)
        if self.created_sa_dir:
            shutil.rmtree(SA_DIR, ignore_errors=True)
            # remove the parents we made too, if empty
            for parent in ("/var/run/secrets/kubernetes.io", "/var/run/secrets"):
                try:
                    os.rmdir(parent)
                except OSError:
                    pass

    # -- load ------------------------------------------------------------------------------

    def load(self, scenario, url, kind, watch, extra, timeout=1800, label=None):
        command = self.pin(self.args.load_cpus) + [
            self.args.vncbench, "load", "--scenario", scenario, "--target", kind, "--url", url,
            "--secret", SECRET, "--ca-file", self.ca_file, "--token-file", self.token_file] + extra
        for name, pids in watch.items():
            if pids:
                command += ["--watch", f"{name}=" + ",".join(map(str, pids))]
        self.logf.write("$ " + " ".join(command) + "\n")
        self.logf.flush()
        perf = None
        if self.args.profile and watch.get("peer") and shutil.which("perf"):
            os.makedirs(self.args.profile_dir, exist_ok=True)
            data = os.path.join(self.args.profile_dir, f"{label or scenario}.data")
            perf = subprocess.Popen(["perf", "record", "-q", "-e", "cpu-clock", "-F", "999", "-g",
                                     "-p", ",".join(map(str, watch["peer"])), "-o", data],
                                    stdout=self.logf, stderr=self.logf)
        try:
            done = subprocess.run(command, stdout=subprocess.PIPE, stderr=self.logf, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return {"error": f"timed out after {timeout} s"}
        finally:
            if perf is not None:
                perf.send_signal(signal.SIGINT)
                perf.wait()
                self.summarize_profile(data)
        if done.returncode != 0:
            return {"error": f"exit {done.returncode}"}
        try:
            return json.loads(done.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            return {"error": "no JSON result"}

    def summarize_profile(self, data):
        """Top symbols by self time and by inclusive time, demangled, next to the perf data."""
        demangle = "| swift demangle --simplified" if shutil.which("swift") else ""
        text = []
        for title, flags in (("self time", "--no-children"), ("inclusive time", "--children")):
            out = run_text(f"perf report -i {data} {flags} --sort dso,symbol --stdio -g none 2>/dev/null "
                           f"| grep -E '^ +[0-9]' | head -n 60 {demangle}")
            text += [f"== {title}", out, ""]
        with open(os.path.splitext(data)[0] + ".txt", "w") as f:
            f.write("\n".join(text))
        log(f"profile: {os.path.splitext(data)[0]}.txt")

    def run_peer(self, name):
        p = self.p
        common = ["--duration", str(p["duration"]), "--runs", str(p["runs"]), "--warmup", str(p["warmup"]),
                  "--pause", str(p["pause"])]
        res = self.results.setdefault(name, {})
        upstream_pids = [self.upstream.pid] + ([self.plain_upstream.pid] if self.plain_upstream else [])

        def with_peer(body):
            proc, url, kind, pids = self.start_peer(name)
            try:
                return body(url, kind, {"peer": pids, "upstream": upstream_pids}, pids)
            finally:
                stop(proc)
                time.sleep(0.5)

        scenarios = self.args.scenarios & ONLY.get(name, self.args.scenarios)
        if "download" in scenarios or "upload" in scenarios:
            def bulk(url, kind, watch, pids):
                for scenario in ("download", "upload"):
                    if scenario in scenarios:
                        log(f"{name}: bulk {scenario}")
                        res[scenario] = self.load(scenario, url, kind, watch, common, label=f"{name}-{scenario}")
            with_peer(bulk)
        if "rtt" in scenarios:
            def rtt(url, kind, watch, pids):
                for level in p["rtt_levels"]:
                    log(f"{name}: interactive, {level} session(s)")
                    rate = 0.0 if level == 1 else p["rtt_rate"]
                    res[f"rtt-{level}"] = self.load("rtt", url, kind, watch, common + [
                        "--sessions", str(level), "--rate", str(rate),
                        "--concurrency", str(p["connect_concurrency"])], label=f"{name}-rtt-{level}")
            with_peer(rtt)
        if "handshake" in scenarios:
            def handshake(url, kind, watch, pids):
                log(f"{name}: handshake rate")
                res["handshake"] = self.load("handshake", url, kind, watch, common + [
                    "--concurrency", str(p["handshake_workers"])], label=f"{name}-handshake")
            with_peer(handshake)
        if "hold" in scenarios and name != "direct":
            runs = []
            for run in range(p["hold_runs"]):
                def hold(url, kind, watch, pids):
                    log(f"{name}: {p['hold_sessions']} idle sessions, run {run + 1}/{p['hold_runs']} (fresh peer)")
                    return self.load("hold", url, kind, watch, [
                        "--sessions", str(p["hold_sessions"]), "--concurrency", str(p["connect_concurrency"]),
                        "--rss-pids", ",".join(map(str, pids)), "--settle", str(p["settle"]),
                        "--pause", str(p["pause"])], label=f"{name}-hold-{run + 1}")
                runs.append(with_peer(hold))
            res["hold"] = runs

    def run(self):
        log(f"work directory {self.work}; mode {'smoke' if self.args.smoke else 'full'}")
        self.started = time.time()
        self.load_before = os.getloadavg()
        try:
            self.upstream, self.upstream_port = self.start_upstream(tls=True)
            if "python" in self.args.peers:
                self.provide_service_account()
                if self.python_mode == "dev":
                    self.plain_upstream, self.plain_upstream_port = self.start_upstream(tls=False)
            for name in self.args.peers:
                self.run_peer(name)
        finally:
            self.cleanup()
        self.elapsed = time.time() - self.started
        self.meta = {
            "written": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "elapsed": self.elapsed, "load_before": list(self.load_before), "python_mode": self.python_mode,
            "notes": self.notes, "params": self.p, "smoke": self.args.smoke, "peer_cpus": self.args.peer_cpus,
            "load_cpus": self.args.load_cpus, "no_pin": self.args.no_pin, "machine": Report(self).machine(),
        }
        report = Report(self).render()
        with open(self.args.out, "w") as f:
            f.write(report)
        raw = os.path.splitext(self.args.out)[0] + ".json"
        with open(raw, "w") as f:
            json.dump({"meta": self.meta, "results": self.results}, f, indent=1, sort_keys=True)
        log(f"wrote {self.args.out} ({self.elapsed:.0f} s) and the raw results {raw}")
        problems = self.problems()
        for problem in problems:
            log("problem: " + problem)
        return 1 if problems else 0

    def problems(self):
        """What makes the run a failure (for CI's smoke run): errors, sessions that did not open, zero rates."""
        found = []
        for peer, res in self.results.items():
            for key, value in res.items():
                items = value if isinstance(value, list) else [value]
                for item in items:
                    if not isinstance(item, dict):
                        continue
                    if "error" in item:
                        found.append(f"{peer} {key}: {item['error']}")
                    if item.get("failed_sessions"):
                        found.append(f"{peer} {key}: {item['failed_sessions']} sessions failed to open ({item.get('last_error')})")
                    if key == "hold" and item.get("alive", 0) < item.get("sessions", 0):
                        found.append(f"{peer} hold: {item.get('alive')} of {item.get('sessions')} sessions alive ({item.get('last_error')})")
                    for run in item.get("runs", []) if isinstance(item.get("runs"), list) else []:
                        if run.get("mbps", 1) <= 0 or run.get("per_second", 1) <= 0:
                            found.append(f"{peer} {key}: a run measured nothing")
                            break
        return found


# -- report --------------------------------------------------------------------------------

def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(value, digits=0, suffix=""):
    if value is None:
        return "—"
    return f"{value:,.{digits}f}{suffix}"


def ratio(a, b, digits=2):
    if a is None or b is None or a <= 0 or b <= 0:
        return "—"
    return f"{a / b:.{digits}f}×"


class Report:
    def __init__(self, harness):
        self.h = harness
        self.r = harness.results
        self.peers = [p for p in PEERS if p in self.r]
        self.meta = getattr(harness, "meta", None)

    def runs(self, peer, key):
        value = self.r.get(peer, {}).get(key)
        if isinstance(value, dict):
            return value.get("runs", value if "error" not in value else [])
        return value or []

    def metric(self, peer, key, field):
        runs = self.runs(peer, key)
        if isinstance(runs, dict):
            return None
        return median([run.get(field) for run in runs if isinstance(run, dict)])

    def cpu(self, peer, key, who="peer"):
        runs = self.runs(peer, key)
        if isinstance(runs, dict):
            return None
        return median([run.get("cpu", {}).get(who) for run in runs if isinstance(run, dict)])

    def error(self, peer, key):
        value = self.r.get(peer, {}).get(key)
        if isinstance(value, dict) and "error" in value:
            return value["error"]
        return None

    def machine(self):
        if self.meta and self.meta.get("machine"):
            return self.meta["machine"]
        h = self.h
        cpu = run_text("lscpu | sed -n 's/^Model name:[ ]*//p'") or platform.processor()
        mem = run_text("free -h | awk '/^Mem:/ {print $2}'")
        osname = run_text(". /etc/os-release && echo $PRETTY_NAME")
        swift = run_text("swift --version 2>&1 | head -n1")
        nginx = run_text("nginx -v 2>&1")
        py = run_text(f"{h.args.python} -c 'import sys, websockets; print(sys.version.split()[0], \"websockets\", websockets.__version__)'")
        lib = run_text(f"{h.args.python} -m pip show lab-orchestrator-ws-proxy-lib 2>/dev/null | sed -n 's/^Version: //p'")
        commit = run_text(f"git -C {ROOT} rev-parse --short HEAD")
        dirty = run_text(f"git -C {ROOT} status --porcelain -- Sources Package.swift")
        perf = run_text("perf stat -e instructions true 2>&1 | grep -c 'not supported'")
        lines = [
            f"- CPU: {cpu}; `nproc` = {os.cpu_count()}; memory {mem}; {osname}; kernel {platform.release()}",
            f"- Pinning: every peer runs under `taskset -c {h.args.peer_cpus}`; the upstream (simulator) and the load "
            f"generator under `taskset -c {h.args.load_cpus}`" if not h.args.no_pin else "- Pinning: none (--no-pin)",
            f"- Load average when the run started: {' '.join(f'{x:.2f}' for x in h.load_before)} (the machine is shared; "
            "other work shows up as noise)",
            f"- {swift}; release builds (`swift build -c release`)",
            f"- vnc-proxy at commit {commit}{' with uncommitted changes in Sources/' if dirty else ''}",
            f"- {nginx}; Python {py}; lab-orchestrator-ws-proxy-lib {lib or '?'}",
            f"- `ulimit -n` {run_text('ulimit -n')}; hardware counters for perf: {'not supported' if perf.strip() == '1' else 'available'}",
        ]
        return "\n".join(lines)

    def render(self):
        h = self.h
        p = h.p
        mode = "smoke (tiny counts: a check that the harness works, not a measurement)" if h.args.smoke else "full"
        out = [
            "# vnc-proxy benchmarks",
            "",
            f"Written by `bash Benchmarks/run.sh{' --smoke' if h.args.smoke else ''}` on "
            f"{self.meta['written']} in {h.elapsed / 60:.1f} minutes; "
            f"mode: {mode}. Regenerate it rather than editing it (the raw numbers are in "
            f"`{os.path.basename(os.path.splitext(h.args.out)[0])}.json`; `harness.py --report-only` re-renders this "
            "file from them).",
            "",
            "## Machine",
            "",
            self.machine(),
            "",
            "## What runs",
            "",
            "- **Upstream**: the project's KubeVirt simulator (`vncbench upstream`, the `KubeVirtSimulator` library, "
            "one event loop) over TLS with a generated CA, bearer-token check, `plain.kubevirt.io`. VMIs `ns/src-N` "
            "(source: 10 KiB binary frames as fast as the reader drains, like virt-handler's chunks), `ns/sink-N` "
            "(discards) and `ns/echo-N` (echoes). KubeVirt keeps one VNC session per VMI, so every concurrent session "
            "gets its own VMI.",
            "- **Load generator**: `vncbench load` (SwiftNIO, one event loop): plain `ws://` to the proxies with a token "
            "per VM in the path (`/TOKEN/VM`, no subprotocol offered, like noVNC >= 1.2); `wss://` with the bearer "
            "token and `plain.kubevirt.io` for direct.",
            "- **Peers**:",
            "  - `vnc-proxy serve` (release build, `--log-level warning`), JWT check, upstream TLS with the CA file.",
            "  - nginx, config generated by the harness: 1 worker, websocket upgrade, `proxy_pass https://` with "
            "`proxy_ssl_verify on` + `proxy_ssl_trusted_certificate` (`proxy_ssl_name localhost`: nginx does not match "
            "IP SANs), the `Authorization` header set, `proxy_buffering off`, 3600 s read/send timeouts, `access_log off`, "
            "the path rewritten from `/TOKEN/VM` to the API path; everything else nginx's defaults "
            "(so `proxy_ssl_session_reuse on`, `proxy_buffer_size` one page). nginx checks no token.",
            "  - nginx-noreuse: the same nginx with `proxy_ssl_session_reuse off` (every upstream TLS handshake in "
            "full, as vnc-proxy and the Python proxy do); handshake scenario only.",
            "  - the original Python proxy, `lab-orchestrator-ws-proxy-lib` 1.0.0 in a venv, started by "
            "`Benchmarks/py_proxy.py` " + (
                "with the harness's CA and token placed at its fixed service-account paths (created for the run and "
                "removed after): it speaks TLS to the same upstream as the others." if h.python_mode == "tls" else
                "in **local-dev mode against a plain ws:// simulator** (see notes)."),
            "  - direct: the load generator straight to the simulator (TLS): the floor.",
            f"- Each figure is the **median of {p['runs']} measured runs** after {p['warmup']} discarded warm-up run "
            f"(windows of {p['duration']} s). Bulk: a fresh session per run. Interactive and handshake: the runs are "
            f"consecutive windows over the same sessions / the same stream of handshakes. Idle sessions: "
            f"{p['hold_runs']} run(s), each against a freshly started peer.",
            "",
        ]
        out += self.targets()
        out += self.bulk_section()
        out += self.rtt_section()
        out += self.hold_section()
        out += self.handshake_section()
        notes_file = os.path.join(HERE, "PROFILES.md")
        if os.path.exists(notes_file):
            with open(notes_file) as f:
                text = f.read().strip().split("\n")
            out += ["## Where the time goes (profiles)", "",
                    "From `Benchmarks/PROFILES.md`: written by hand from `bash Benchmarks/run.sh --profile ...` runs; "
                    "it is not regenerated with the tables above, so check its commit and date.", ""]
            body = [line for line in text if not line.startswith("# ")]
            while body and not body[0].strip():
                body.pop(0)
            out += body + [""]
        out += ["## Notes", ""]
        notes = list(h.notes)
        if p["hold_sessions"] < 10000 and not h.args.smoke:
            import resource
            soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
            notes.append(f"Idle sessions: {p['hold_sessions']:,}, not 10,000: a proxied session takes two descriptors in "
                         f"the proxy, and the descriptor limit here is {soft:,} (hard {hard:,}; raising the hard limit "
                         "needs CAP_SYS_RESOURCE, which this sandbox lacks)." if hard <= 20000 else
                         f"Idle sessions: {p['hold_sessions']:,} (set by --set hold_sessions).")
        notes.append("CPU columns are the peer's CPU time over the window divided by its length (100% = one core): "
                     "a peer near 100% is the bottleneck; well below, something else is (the upstream and the load "
                     "generator share the other core).")
        notes.append("Latency floor: direct runs the load generator and the upstream on the same CPU, while every "
                     "proxied message crosses to the peer's CPU and back, and a cross-CPU wake-up on this virtual machine "
                     "costs tens of µs. So \"added\" latency includes that hop for every peer alike; compare peers with "
                     "each other rather than with zero.")
        notes.append("Handshakes: direct is no ceiling there: the load generator's TLS client handshakes share CPU 0 with "
                     "the upstream's TLS server handshakes, so CPU 0 saturates first; the proxies' client legs are plain ws. "
                     "Sessions per peer CPU-second (rate / peer CPU) is the peer's cost per session whatever limited the run.")
        notes.append("vnc-proxy runs `--threads` equal to the CPUs of its `taskset` mask (one event loop per CPU), "
                     "as nginx runs one worker per CPU.")
        out += [f"- {n}" for n in notes]
        out.append("")
        return "\n".join(out)

    def having(self, key):
        return [peer for peer in self.peers if key in self.r.get(peer, {})]

    def bulk_section(self):
        out = ["## 1–2. Bulk transfer (MB/s, 10^6 bytes/s of payload, one session)", ""]
        for key, title in (("download", "download (VM → client)"), ("upload", "upload (client → VM)")):
            out += [f"**{title}**", "",
                    "| peer | MB/s | × nginx | × python | × direct | peer CPU | MB per peer CPU-second | upstream CPU | load generator CPU |",
                    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
            v = {peer: self.metric(peer, key, "mbps") for peer in self.having(key)}
            for peer in self.having(key):
                cpu = self.cpu(peer, key)
                per_cpu = v[peer] / (cpu / 100) if v[peer] is not None and cpu else None
                out.append(f"| {peer} | {fmt(v[peer], 1)} | {ratio(v[peer], v.get('nginx'))} | {ratio(v[peer], v.get('python'), 1)} "
                           f"| {ratio(v[peer], v.get('direct'))} | {fmt(cpu, 0, '%')} | {fmt(per_cpu)} "
                           f"| {fmt(self.cpu(peer, key, 'upstream'), 0, '%')} | {fmt(self.cpu(peer, key, 'loadgen'), 0, '%')} |")
            out.append("")
        out += ["", "Download: VM → client from a `source` VMI (10 KiB frames). Upload: client → VM into a `sink` VMI, "
                f"64 KiB masked binary messages, counted as the client's socket takes them (steady state: the window "
                "starts after the buffers on the path are full).", ""]
        errors = [f"{peer} {key}: {self.error(peer, key)}" for peer in self.peers for key in ("download", "upload") if self.error(peer, key)]
        if errors:
            out += ["Errors: " + "; ".join(errors), ""]
        return out

    def rtt_section(self):
        p = self.h.p
        out = ["## 3. Interactive round trip (µs; 8-byte messages echoed by the VM)", ""]
        out += ["| peer | sessions | p50 | p99 | p99.9 | added p50 | added p99 | added p99.9 | added p99 × nginx | msgs/s | peer CPU |",
                "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for level in p["rtt_levels"]:
            key = f"rtt-{level}"
            direct = {q: self.metric("direct", key, q) for q in ("p50", "p99", "p999")}
            nginx_added = None
            if self.metric("nginx", key, "p99") is not None and direct["p99"] is not None:
                nginx_added = self.metric("nginx", key, "p99") - direct["p99"]
            for peer in self.having(key):
                vals = {q: self.metric(peer, key, q) for q in ("p50", "p99", "p999")}
                added = {q: (vals[q] - direct[q]) if vals[q] is not None and direct[q] is not None and peer != "direct" else None
                         for q in vals}
                failed = self.r.get(peer, {}).get(key, {}).get("failed_sessions") if isinstance(self.r.get(peer, {}).get(key), dict) else None
                note = f" ({failed} failed to open)" if failed else ""
                out.append(f"| {peer} | {level}{note} | {fmt(vals['p50'])} | {fmt(vals['p99'])} | {fmt(vals['p999'])} "
                           f"| {fmt(added['p50'])} | {fmt(added['p99'])} | {fmt(added['p999'])} "
                           f"| {ratio(added['p99'], nginx_added) if peer not in ('direct',) else '—'} "
                           f"| {fmt(self.metric(peer, key, 'per_second'))} | {fmt(self.cpu(peer, key), 0, '%')} |")
        out += ["", "1 session: closed loop (the next message leaves when the echo is back). "
                f"More sessions: each sends {p['rtt_rate']:g} messages/s on its own timer (open loop, random phase), "
                "so the offered load is sessions × that rate. \"added\" is the peer's figure minus direct's at the "
                "same percentile; a negative one means direct's own figure came out higher in that run, which is "
                "noise from the shared machine.", ""]
        return out

    def hold_section(self):
        p = self.h.p
        out = [f"## 4. Idle sessions held ({p['hold_sessions']:,})", ""]
        out += ["| peer | established | alive after | RSS before (KiB) | RSS after (KiB) | KiB per session | × nginx | open time (s) |",
                "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        per = {}
        for peer in self.having("hold"):
            runs = [r for r in self.r.get(peer, {}).get("hold", []) if isinstance(r, dict) and "error" not in r]
            per[peer] = median([r["per_session_kib"] for r in runs])
        for peer in self.having("hold"):
            runs = [r for r in self.r.get(peer, {}).get("hold", []) if isinstance(r, dict) and "error" not in r]
            errors = [r["error"] for r in self.r.get(peer, {}).get("hold", []) if isinstance(r, dict) and "error" in r]
            if not runs:
                out.append(f"| {peer} | — | — | — | — | — | — | — |" + (f" {errors[0]}" if errors else ""))
                continue
            out.append(f"| {peer} | {min(r['established'] for r in runs):,} | {min(r['alive'] for r in runs):,} "
                       f"| {fmt(median([r['rss_before_kib'] for r in runs]))} | {fmt(median([r['rss_after_kib'] for r in runs]))} "
                       f"| {fmt(per[peer], 1)} | {ratio(per[peer], per.get('nginx'))} | {fmt(median([r['open_seconds'] for r in runs]), 1)} |")
        out += ["", "Each session has done one echo round trip, then sits idle. RSS is VmRSS from /proc/PID/status "
                "(nginx: master + worker), read after a warm-up of 50 sessions opened and closed, and again "
                f"{p['settle']:g} s after the last session opened; per session = difference / sessions; established and "
                "alive are the minimum over runs (alive: answered a second echo after the RSS reading).", ""]
        return out

    def handshake_section(self):
        p = self.h.p
        out = [f"## 5. Handshake rate (new sessions/s, {p['handshake_workers']} in flight)", ""]
        out += ["| peer | sessions/s | × nginx | × python | × direct | latency p50 (ms) | p99 (ms) | failed/run | peer CPU | sessions per peer CPU-second | upstream CPU | load generator CPU |",
                "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        rate = {peer: self.metric(peer, "handshake", "per_second") for peer in self.having("handshake")}
        for peer in self.having("handshake"):
            p50 = self.metric(peer, "handshake", "p50")
            p99 = self.metric(peer, "handshake", "p99")
            cpu = self.cpu(peer, "handshake")
            out.append(f"| {peer} | {fmt(rate[peer])} | {ratio(rate[peer], rate.get('nginx'))} | {ratio(rate[peer], rate.get('python'), 1)} "
                       f"| {ratio(rate[peer], rate.get('direct'))} | {fmt(p50 / 1000 if p50 else None, 2)} "
                       f"| {fmt(p99 / 1000 if p99 else None, 2)} | {fmt(self.metric(peer, 'handshake', 'failed'))} "
                       f"| {fmt(cpu, 0, '%')} | {fmt(rate[peer] / (cpu / 100) if rate[peer] is not None and cpu else None)} "
                       f"| {fmt(self.cpu(peer, 'handshake', 'upstream'), 0, '%')} | {fmt(self.cpu(peer, 'handshake', 'loadgen'), 0, '%')} |")
        out += ["", "A session counts when its first echo is back: TCP connect, the client's upgrade, the token check "
                "(vnc-proxy, Python), the upstream TCP connect + TLS handshake + upgrade, the 101, one round trip; "
                "then the client sends a close and the worker starts the next session at once.", ""]
        return out

    def targets(self):
        r = self
        out = ["## Targets (issue 6)", "", "| target | measured | met |", "| --- | --- | --- |"]

        def row(text, measured, ok):
            out.append(f"| {text} | {measured} | {'yes' if ok else ('**no**' if ok is not None else '—')} |")

        def cmp(a, b, factor):
            return None if a is None or b is None else a >= factor * b

        for key, label in (("download", "bulk download"), ("upload", "bulk upload")):
            v, n, py = (r.metric(x, key, "mbps") for x in ("vnc-proxy", "nginx", "python"))
            row(f"{label} ≥ 1.0× nginx", f"{fmt(v, 1)} vs {fmt(n, 1)} MB/s ({ratio(v, n)})", cmp(v, n, 1.0))
            dr = r.metric("direct", key, "mbps")
            ceiling = f"; direct itself is {ratio(dr, py, 1)} Python here" if dr and py else ""
            row(f"{label} ≥ 20× Python", f"{fmt(v, 1)} vs {fmt(py, 1)} MB/s ({ratio(v, py, 1)}{ceiling})", cmp(v, py, 20.0))
        for level in self.h.p["rtt_levels"]:
            key = f"rtt-{level}"
            d = r.metric("direct", key, "p99")
            v = r.metric("vnc-proxy", key, "p99")
            n = r.metric("nginx", key, "p99")
            va = None if v is None or d is None else v - d
            na = None if n is None or d is None else n - d
            if va is not None and na is not None and (va < 0 or na < 0):
                row(f"added p99 ≤ nginx's, {level} session(s)",
                    f"{fmt(va)} vs {fmt(na)} µs: inconclusive, direct's p99 ({fmt(d)} µs) came out above a proxy's (noise)", None)
            else:
                row(f"added p99 ≤ nginx's, {level} session(s)", f"{fmt(va)} vs {fmt(na)} µs",
                    None if va is None or na is None else va <= na)
        holds = [x for x in r.r.get("vnc-proxy", {}).get("hold", []) if isinstance(x, dict) and "error" not in x]
        per = median([x["per_session_kib"] for x in holds])
        est = min([x["established"] for x in holds], default=None)
        n_hold = self.h.p["hold_sessions"]
        row(f"{n_hold:,} idle sessions at ≤ 40 KiB RSS each", f"{fmt(per, 1)} KiB/session, {fmt(est)} established",
            None if per is None else (per <= 40 and est == n_hold))
        v, py = r.metric("vnc-proxy", "handshake", "per_second"), r.metric("python", "handshake", "per_second")
        cpu = r.cpu("vnc-proxy", "handshake")
        row("handshake rate ≥ 2,000/s (2 cores asked; the peer has 1 here)",
            f"{fmt(v)}/s at {fmt(cpu, 0, '%')} of its core", None if v is None else v >= 2000)
        row("handshake rate ≥ 10× Python", f"{fmt(v)} vs {fmt(py)}/s ({ratio(v, py, 1)})", cmp(v, py, 10.0))
        out.append("")
        if self.h.args.smoke:
            out += ["(smoke mode: counts too small for these to mean anything)", ""]
        return out


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny counts, for CI: checks the harness works")
    parser.add_argument("--out", help="report path (default Benchmarks/RESULTS.md; smoke: Benchmarks/.build/RESULTS-smoke.md)")
    parser.add_argument("--vncbench")
    parser.add_argument("--vnc-proxy", dest="vnc_proxy")
    parser.add_argument("--python", help="python of the venv with lab-orchestrator-ws-proxy-lib")
    parser.add_argument("--peers", default=",".join(PEERS))
    parser.add_argument("--scenarios", default="download,upload,rtt,hold,handshake")
    parser.add_argument("--peer-cpus", default="1")
    parser.add_argument("--load-cpus", default="0")
    parser.add_argument("--no-pin", action="store_true")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a count, e.g. --set hold_sessions=2000 --set rtt_levels=1,100")
    parser.add_argument("--report-only", metavar="JSON", help="re-render the report from a saved JSON and exit")
    parser.add_argument("--profile", action="store_true",
                        help="perf record (cpu-clock) the peers during each scenario; summaries in --profile-dir")
    parser.add_argument("--profile-dir", default=os.path.join(HERE, ".build", "profiles"))
    args = parser.parse_args()
    if args.report_only:
        with open(args.report_only) as f:
            saved = json.load(f)
        meta = saved["meta"]
        args.smoke = meta["smoke"]
        args.peer_cpus, args.load_cpus, args.no_pin = meta["peer_cpus"], meta["load_cpus"], meta["no_pin"]
        if args.out is None:
            args.out = os.path.splitext(args.report_only)[0] + ".md"
        loaded = argparse.Namespace(results=saved["results"], meta=meta, p=meta["params"], elapsed=meta["elapsed"],
                                    load_before=meta["load_before"], python_mode=meta["python_mode"],
                                    notes=meta["notes"], args=args)
        with open(args.out, "w") as f:
            f.write(Report(loaded).render())
        log(f"wrote {args.out}")
        return
    args.peers = [p for p in args.peers.split(",") if p]
    args.scenarios = set(s for s in args.scenarios.split(",") if s)
    if args.out is None:
        args.out = os.path.join(HERE, ".build", "RESULTS-smoke.md") if args.smoke else os.path.join(HERE, "RESULTS.md")
    if os.cpu_count() and os.cpu_count() < 2 and not args.no_pin:
        args.peer_cpus = args.load_cpus = "0"
    harness = Harness(args)
    try:
        sys.exit(harness.run())
    except KeyboardInterrupt:
        harness.cleanup()
        raise


if __name__ == "__main__":
    main()
