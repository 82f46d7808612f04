#!/usr/bin/env python3
"""Mint a token the way LabOrchestrator does, then open a VNC console through vnc-proxy with it.

The token comes from lab-orchestrator-lib-auth 2.2.0, the library LabOrchestrator itself uses, so this
shows that vnc-proxy accepts LabOrchestrator's tokens as they are. The connection uses the
`websockets` package and prints the first 12 bytes of the RFB stream (b'RFB 003.008\\n').

    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install lab-orchestrator-lib-auth==2.2.0 websockets
    SECRET_KEY=... /tmp/venv/bin/python examples/mint-token.py --namespace demo --vm testvm \\
        --proxy ws://127.0.0.1:5001

With `vnc-proxy demo`, pass the secret, proxy address and VMI name (testvm) that the demo prints.
--token-only prints just the token (for curl-probe.sh or noVNC). Exit status 0 when the greeting
arrived, 1 when the proxy refused or sent something else.
"""
import argparse
import os
import sys

from lab_orchestrator_lib_auth.auth import LabInstanceTokenParams, generate_auth_token


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--secret", default=os.environ.get("SECRET_KEY"),
                   help="the proxy's HS256 secret (default: $SECRET_KEY)")
    p.add_argument("--namespace", required=True, help="namespace of the lab instance (the VMIs' namespace)")
    p.add_argument("--vm", action="append", required=True, help="a VMI the token opens; repeatable")
    p.add_argument("--connect-vm", help="the VMI to connect to (default: the first --vm)")
    p.add_argument("--proxy", default="ws://127.0.0.1:5001",
                   help="the proxy's base URL, with its path prefix if it has one")
    p.add_argument("--expires-in", type=int, default=3600, help="lifetime in seconds")
    p.add_argument("--user-id", default="1")
    p.add_argument("--lab-id", default="1")
    p.add_argument("--lab-instance-id", default="1")
    p.add_argument("--token-only", action="store_true", help="print the token and exit")
    p.add_argument("--timeout", type=float, default=10)
    args = p.parse_args()
    if not args.secret:
        p.error("give --secret or set SECRET_KEY")

    token = generate_auth_token(
        args.user_id,
        LabInstanceTokenParams(args.lab_id, args.lab_instance_id, args.namespace, args.vm),
        args.secret,
        expires_in=args.expires_in,
    )
    if args.token_only:
        print(token)
        return 0

    # Imported here so --token-only needs only the auth library.
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    vm = args.connect_vm or args.vm[0]
    url = f"{args.proxy.rstrip('/')}/{token}/{vm}"
    print(f"token minted by lab-orchestrator-lib-auth for {args.namespace}/{','.join(args.vm)}: "
          f"{token[:16]}...{token[-6:]}")
    print(f"connecting to {args.proxy.rstrip('/')}/<token>/{vm}")
    try:
        with connect(url, open_timeout=args.timeout, close_timeout=2) as ws:
            # RFB is a byte stream: the greeting may come split over several websocket messages.
            data = b""
            while len(data) < 12:
                msg = ws.recv(timeout=args.timeout)
                data += msg if isinstance(msg, bytes) else msg.encode()
    except InvalidStatus as e:
        r = e.response
        print(f"refused: HTTP {r.status_code} {r.body.decode(errors='replace').strip()}")
        return 1
    except Exception as e:
        print(f"failed: {type(e).__name__}: {e}")
        return 1
    print(f"first 12 bytes: {data[:12]!r}")
    return 0 if data.startswith(b"RFB 003.") else 1


if __name__ == "__main__":
    sys.exit(main())
