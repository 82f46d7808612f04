#!/usr/bin/env bash
# Regenerates Tests/VNCProxyTests/Fixtures/laborchestrator-tokens.json:
# JWTs minted by the original Python library (lab-orchestrator-lib-auth,
# its own generate_auth_token), so the Swift verifier is tested against
# real LabOrchestrator tokens rather than tokens we minted ourselves.
#
# Usage (from the repo root): bash scripts/make-token-fixture.sh
# Needs python3 with the venv module and access to PyPI.
set -euo pipefail

LIBRARY="lab-orchestrator-lib-auth==2.2.0"
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$REPO_ROOT/Tests/VNCProxyTests/Fixtures/laborchestrator-tokens.json"

WORKDIR="$(mktemp -d)"
trap 'rm -rf "$WORKDIR"' EXIT

python3 -m venv "$WORKDIR/venv"
"$WORKDIR/venv/bin/pip" install --quiet --disable-pip-version-check "$LIBRARY"

mkdir -p "$(dirname "$OUT")"
"$WORKDIR/venv/bin/python" - "$OUT" "$LIBRARY" <<'PY'
import base64
import datetime
import json
import sys
import time

from lab_orchestrator_lib_auth.auth import (
    LabInstanceTokenParams,
    decode_auth_token,
    generate_auth_token,
)

out_path, library = sys.argv[1], sys.argv[2]
SECRET = "fixture-secret"  # short on purpose: deployed secrets are short

# generate_auth_token takes expires_at as a UNIX time (typed Optional[int]);
# without it, exp = time.time() + expires_in, which is a float.
FAR_FUTURE = 4102444800  # 2100-01-01T00:00:00Z
PAST = 1577836800        # 2020-01-01T00:00:00Z


def b64url_json(segment):
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


def entry(name, expect, user_id, lab_id, lab_instance_id, namespace, allowed,
          expires_at=None, expires_in=None):
    params = LabInstanceTokenParams(
        lab_id=lab_id,
        lab_instance_id=lab_instance_id,
        namespace_name=namespace,
        allowed_vmi_names=allowed,
    )
    kwargs = {}
    if expires_at is not None:
        kwargs["expires_at"] = expires_at
    if expires_in is not None:
        kwargs["expires_in"] = expires_in
    token = generate_auth_token(user_id, params, SECRET, **kwargs)
    header_b64, payload_b64, _sig = token.split(".")
    header = b64url_json(header_b64)
    claims = b64url_json(payload_b64)
    assert header["alg"] == "HS256", header
    if expect == "valid":
        # Round-trip through the library's own decoder as a sanity check.
        back = decode_auth_token(token, SECRET)
        assert back.namespace_name == namespace and back.allowed_vmi_names == allowed
    return {
        "name": name,
        "token": token,
        "secret": SECRET,
        "expect": expect,
        "namespace": namespace,
        "allowed_vmi_names": allowed,
        "user_id": user_id,
        "lab_id": lab_id,
        "lab_instance_id": lab_instance_id,
        "header": header,
        "claims": claims,
    }


tokens = [
    entry("int-ids", "valid", 7, 3, 9, "pentest-ubuntu-3-9", ["ubuntu"],
          expires_at=FAR_FUTURE),
    # Identifier = Union[str, int] in the library, so string ids are allowed.
    entry("string-ids", "valid", "user-42", "lab-1", "inst-2", "lab-ns-2",
          ["vm-a", "vm-b"], expires_at=FAR_FUTURE),
    entry("expired", "expired", 7, 3, 9, "pentest-ubuntu-3-9", ["ubuntu"],
          expires_at=PAST),
    # The library's default path (no expires_at): exp = time.time() + expires_in,
    # a float with a fractional part. Pushed out to ~2100 so it stays valid.
    entry("float-exp", "valid", 7, 3, 9, "pentest-ubuntu-3-9", ["ubuntu"],
          expires_in=FAR_FUTURE - int(time.time())),
]

doc = {
    "generator": "bash scripts/make-token-fixture.sh",
    "library": library,
    "generated_at": datetime.datetime.now(datetime.timezone.utc).date().isoformat(),
    "tokens": tokens,
}

with open(out_path, "w", encoding="utf-8") as f:
    json.dump(doc, f, indent=2)
    f.write("\n")
print(f"wrote {out_path} ({len(tokens)} tokens)")
PY
