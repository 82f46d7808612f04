"""Runs the original LabOrchestrator proxy (lab-orchestrator-ws-proxy-lib 1.0.0) for the benchmarks.

Its WebsocketProxy reads the service-account CA and token from fixed paths
(/var/run/secrets/kubernetes.io/serviceaccount/{ca.crt,token}) unless local_dev_mode is on;
harness.py provides those files, or falls back to local-dev mode against a plain ws:// upstream.
"""
import argparse
import logging
import warnings

from lab_orchestrator_ws_proxy_lib.ws_proxy_lib import WebsocketProxy

API_PATH = "/apis/subresources.kubevirt.io/v1/namespaces/{namespace}/virtualmachineinstances/{vmi_name}/vnc"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--remote-url", required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--local-dev-mode", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    warnings.simplefilter("ignore", DeprecationWarning)  # asyncio.get_event_loop() in the library
    proxy = WebsocketProxy(args.remote_url, API_PATH, args.local_dev_mode, args.secret)
    proxy.run(args.host, args.port)


if __name__ == "__main__":
    main()
