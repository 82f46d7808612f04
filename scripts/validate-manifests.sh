#!/usr/bin/env bash
# Validates the Kubernetes manifests under deploy/kubernetes/, offline:
#   1. every *.yaml parses (duplicate keys are an error) and every object validates against the
#      Kubernetes JSON schemas bundled in the PyPI package kubernetes-validate, in strict mode
#      (unknown fields rejected), for each version in KUBE_VERSIONS; an object whose kind has no
#      schema is an error too (kustomization.yaml is checked by hand instead);
#   2. project rules: the ClusterRole grants exactly get on virtualmachineinstances/vnc,
#      kustomization.yaml lists every manifest but the ingress example, the Deployment has the
#      required security settings, probes, resources and drain budget, and the objects refer to
#      each other consistently (names, labels, ports).
#
# Usage (from anywhere): bash scripts/validate-manifests.sh
#   KUBE_VERSIONS="1.29.0 1.37.0"  Kubernetes versions to validate against (bundled: 1.25-1.37)
#   PYTHON=python3                 interpreter to use
# Installs kubernetes-validate with pip when it is missing (PyPI only; nothing is fetched at
# validation time). Exits non-zero on any failure.
set -euo pipefail

KUBERNETES_VALIDATE_VERSION="1.37.0"
KUBE_VERSIONS="${KUBE_VERSIONS:-1.29.0 1.37.0}"
PYTHON="${PYTHON:-python3}"
export PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MANIFEST_DIR="$REPO_ROOT/deploy/kubernetes"

have_tool() {
    "$1" -c 'import kubernetes_validate.utils, yaml' >/dev/null 2>&1
}

# Fallback location for an interpreter that refuses global installs.
VENV="${XDG_CACHE_HOME:-$HOME/.cache}/vnc-proxy-validate-manifests"

if ! have_tool "$PYTHON"; then
    if [ -x "$VENV/bin/python" ] && have_tool "$VENV/bin/python"; then
        PYTHON="$VENV/bin/python"
    else
        echo "installing kubernetes-validate==$KUBERNETES_VALIDATE_VERSION with pip"
        PIP_LOG="$(mktemp)"
        if ! "$PYTHON" -m pip install --quiet "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION" \
                >"$PIP_LOG" 2>&1; then
            # An externally managed interpreter (PEP 668, e.g. Debian's python3) refuses a
            # global install: fall back to a private virtual environment.
            echo "global pip install refused ($(grep -m1 -iE 'error' "$PIP_LOG" || tail -n1 "$PIP_LOG"));" \
                "using a virtual environment in $VENV"
            "$PYTHON" -m venv "$VENV"
            "$VENV/bin/python" -m pip install --quiet "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"
            PYTHON="$VENV/bin/python"
        fi
        rm -f "$PIP_LOG"
        have_tool "$PYTHON" || { echo "FAIL: kubernetes-validate not importable after install" >&2; exit 2; }
    fi
fi

exec "$PYTHON" - "$MANIFEST_DIR" "$KUBE_VERSIONS" <<'PY'
import glob
import os
import sys

import yaml
import kubernetes_validate.utils as kv
from kubernetes_validate.version import __version__ as kv_version

manifest_dir, versions = sys.argv[1], sys.argv[2].split()
KUSTOMIZATION = "kustomization.yaml"
EXAMPLES = {"ingress-example.yaml"}  # validated, but must not be in the kustomization

failures = []


def fail(msg):
    failures.append(msg)
    print(f"FAIL {msg}")


class StrictLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate mapping keys (PyYAML silently keeps the last)."""


def _mapping(loader, node, deep=False):
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)

print(f"kubernetes-validate {kv_version}; schemas for Kubernetes {', '.join(versions)} (strict)")

files = sorted(glob.glob(os.path.join(manifest_dir, "*.yaml")) +
               glob.glob(os.path.join(manifest_dir, "*.yml")))
if not files:
    fail(f"no manifests found in {manifest_dir}")

docs = {}  # basename -> list of objects
for path in files:
    name = os.path.basename(path)
    try:
        with open(path) as f:
            objs = [o for o in yaml.load_all(f, Loader=StrictLoader) if o is not None]
    except yaml.YAMLError as e:
        fail(f"{name}: YAML error: {e}")
        continue
    docs[name] = objs
    if not objs:
        fail(f"{name}: no objects")
        continue
    if name == KUSTOMIZATION:
        print(f"ok   {name}: Kustomization (no upstream schema; checked below)")
        continue
    for obj in objs:
        if not isinstance(obj, dict) or "kind" not in obj or "apiVersion" not in obj:
            fail(f"{name}: an object without apiVersion/kind")
            continue
        ident = f"{obj['kind']}/{obj.get('metadata', {}).get('name', '?')}"
        ok = True
        for version in versions:
            try:
                kv.validate(obj, version, strict=True)
            except kv.ValidationError as e:
                where = ".".join(str(p) for p in e.path) or "(root)"
                fail(f"{name}: {ident} against {version}: {where}: {e.message}")
                ok = False
            except (kv.SchemaNotFoundError, kv.InvalidSchemaError, kv.VersionNotSupportedError) as e:
                fail(f"{name}: {ident} against {version}: {e.message}")
                ok = False
        if ok:
            print(f"ok   {name}: {ident} ({obj['apiVersion']}) valid against {', '.join(versions)}")


# ---- project rules ------------------------------------------------------------------------
def objects(kind):
    return [(n, o) for n, objs in docs.items() for o in objs
            if isinstance(o, dict) and o.get("kind") == kind]


def one(kind):
    found = objects(kind)
    if len(found) != 1:
        fail(f"expected exactly one {kind}, found {len(found)}")
        return None
    return found[0][1]


def check(cond, msg):
    if not cond:
        fail(msg)
    return cond


rules_before = len(failures)

# ClusterRole: exactly one rule, exactly this.
EXPECTED_RULES = [{"apiGroups": ["subresources.kubevirt.io"],
                   "resources": ["virtualmachineinstances/vnc"],
                   "verbs": ["get"]}]
role = one("ClusterRole")
if role is not None:
    check(role.get("rules") == EXPECTED_RULES,
          f"ClusterRole rules must be exactly {EXPECTED_RULES}, got {role.get('rules')}")
    check("aggregationRule" not in role, "ClusterRole must not use aggregationRule")
check(not objects("Role"), "no namespaced Role expected")

# Kustomization lists every manifest except the examples, and nothing else.
kust = docs.get(KUSTOMIZATION)
if check(kust is not None and len(kust) == 1, f"{KUSTOMIZATION} missing or not one document"):
    k = kust[0]
    check(k.get("kind") == "Kustomization", f"{KUSTOMIZATION}: kind must be Kustomization")
    resources = k.get("resources") or []
    check(len(resources) == len(set(resources)), f"{KUSTOMIZATION}: duplicate resources")
    expected = {os.path.basename(p) for p in files} - {KUSTOMIZATION} - EXAMPLES
    missing = sorted(expected - set(resources))
    extra = sorted(set(resources) - expected)
    check(not missing, f"{KUSTOMIZATION}: does not list {missing}")
    check(not extra, f"{KUSTOMIZATION}: lists files that are not manifests here or are examples: {extra}")

# Deployment.
dep = one("Deployment")
sa = one("ServiceAccount")
secret = one("Secret")
svc = one("Service")
if dep is not None:
    spec = dep.get("spec", {})
    pod = spec.get("template", {}).get("spec", {})
    pod_labels = spec.get("template", {}).get("metadata", {}).get("labels", {}) or {}
    psc = pod.get("securityContext", {}) or {}
    check(spec.get("replicas") == 2, "Deployment: replicas must be 2")
    check(pod.get("automountServiceAccountToken") is True,
          "Deployment: automountServiceAccountToken must be true (the proxy uses the SA token)")
    if sa is not None:
        check(pod.get("serviceAccountName") == sa["metadata"]["name"],
              "Deployment: serviceAccountName must be the ServiceAccount in serviceaccount.yaml")
        check(sa.get("automountServiceAccountToken", True) is not False,
              "ServiceAccount must not disable automountServiceAccountToken")
    tgps = pod.get("terminationGracePeriodSeconds", 30)
    check(isinstance(tgps, int) and tgps >= 30,
          f"Deployment: terminationGracePeriodSeconds must be >= 30 (drain is 10 s), got {tgps}")
    check(bool(pod.get("topologySpreadConstraints"))
          or bool((pod.get("affinity") or {}).get("podAntiAffinity")),
          "Deployment: needs topologySpreadConstraints or podAntiAffinity")
    match = spec.get("selector", {}).get("matchLabels", {}) or {}
    check(match and all(pod_labels.get(k) == v for k, v in match.items()),
          "Deployment: selector.matchLabels must match the pod template labels")

    containers = pod.get("containers") or []
    if check(len(containers) == 1, "Deployment: expected exactly one container"):
        c = containers[0]
        csc = c.get("securityContext", {}) or {}

        def effective(key):
            return csc[key] if key in csc else psc.get(key)

        check(effective("runAsNonRoot") is True, "Deployment: runAsNonRoot must be true")
        check(effective("runAsUser") == 65532, "Deployment: runAsUser must be 65532")
        check(csc.get("readOnlyRootFilesystem") is True,
              "Deployment: readOnlyRootFilesystem must be true")
        check(csc.get("allowPrivilegeEscalation") is False,
              "Deployment: allowPrivilegeEscalation must be false")
        check(csc.get("privileged") is not True, "Deployment: must not be privileged")
        caps = csc.get("capabilities", {}) or {}
        check("ALL" in (caps.get("drop") or []), "Deployment: capabilities must drop ALL")
        check(not caps.get("add"), "Deployment: must not add capabilities")
        check((effective("seccompProfile") or {}).get("type") == "RuntimeDefault",
              "Deployment: seccompProfile must be RuntimeDefault")

        ports = {p.get("containerPort") for p in c.get("ports") or []}
        port_names = {p.get("name"): p.get("containerPort") for p in c.get("ports") or []}
        check(ports == {5001, 9090}, f"Deployment: container must expose exactly ports 5001 and 9090 (admin), got {ports}")
        env_values = {e.get("name"): str(e.get("value")) for e in c.get("env") or []}
        check(env_values.get("ADMIN_PORT") == "9090" and port_names.get("admin") == 9090,
              "Deployment: ADMIN_PORT must be 9090, the container port named admin")
        for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
            get = (c.get(probe) or {}).get("httpGet") or {}
            port = get.get("port")
            port = port_names.get(port, port)
            check(get.get("path") == path and port == 9090,
                  f"Deployment: {probe} must be httpGet {path} on the admin port 9090, got {get}")
        res = c.get("resources") or {}
        for section in ("requests", "limits"):
            for r in ("cpu", "memory"):
                check(r in (res.get(section) or {}), f"Deployment: resources.{section}.{r} missing")

        env = {e.get("name"): e for e in c.get("env") or []}
        ref = ((env.get("SECRET_KEY") or {}).get("valueFrom") or {}).get("secretKeyRef") or {}
        if check(bool(ref), "Deployment: SECRET_KEY must come from a secretKeyRef"):
            check(ref.get("optional") is not True, "Deployment: SECRET_KEY must not be optional")
            if secret is not None:
                keys = set((secret.get("stringData") or {}).keys()) | set((secret.get("data") or {}).keys())
                check(ref.get("name") == secret["metadata"]["name"] and ref.get("key") in keys,
                      f"Deployment: SECRET_KEY secretKeyRef {ref} does not match secret.yaml")
        if "PORT" in env:
            check(str(env["PORT"].get("value")) == "5001", "Deployment: PORT env must be 5001")

    # Everything that selects the pods must select these pods.
    def selects(selector, what):
        check(bool(selector) and all(pod_labels.get(k) == v for k, v in selector.items()),
              f"{what}: selector {selector} does not match the Deployment's pods")

    if svc is not None:
        s = svc.get("spec", {})
        selects(s.get("selector"), "Service")
        check(s.get("type", "ClusterIP") == "ClusterIP", "Service: type must be ClusterIP")
        sp = s.get("ports") or []
        check(len(sp) == 1 and sp[0].get("name") == "http" and sp[0].get("port") == 80
              and sp[0].get("targetPort") in (5001, "http"),
              f"Service: expected one port http 80 -> 5001, got {sp}")
    pdb = one("PodDisruptionBudget")
    if pdb is not None:
        selects((pdb["spec"].get("selector") or {}).get("matchLabels"), "PodDisruptionBudget")
        check(pdb["spec"].get("minAvailable") == 1, "PodDisruptionBudget: minAvailable must be 1")
    np = one("NetworkPolicy")
    if np is not None:
        selects((np["spec"].get("podSelector") or {}).get("matchLabels"), "NetworkPolicy")
        check(set(np["spec"].get("policyTypes") or []) == {"Ingress", "Egress"},
              "NetworkPolicy: policyTypes must be Ingress and Egress")
        in_ports = {p.get("port") for r in np["spec"].get("ingress") or [] for p in r.get("ports") or []}
        check(in_ports == {5001, 9090}, f"NetworkPolicy: ingress must allow only ports 5001 and 9090, got {in_ports}")
        out_ports = {p.get("port") for r in np["spec"].get("egress") or [] for p in r.get("ports") or []}
        check(out_ports == {443, 6443, 53},
              f"NetworkPolicy: egress must allow 443, 6443 and 53, got {out_ports}")
    hpa = one("HorizontalPodAutoscaler")
    if hpa is not None:
        h = hpa["spec"]
        check(h.get("scaleTargetRef", {}).get("kind") == "Deployment"
              and h.get("scaleTargetRef", {}).get("name") == dep["metadata"]["name"],
              "HorizontalPodAutoscaler: scaleTargetRef must be the Deployment")
        check(h.get("minReplicas") == 2 and h.get("maxReplicas") == 10,
              "HorizontalPodAutoscaler: replicas must range 2..10")
        check(any(m.get("type") == "Resource" and m.get("resource", {}).get("name") == "cpu"
                  for m in h.get("metrics") or []),
              "HorizontalPodAutoscaler: must scale on CPU")

crb = one("ClusterRoleBinding")
if crb is not None and role is not None and sa is not None:
    check(crb["roleRef"].get("kind") == "ClusterRole"
          and crb["roleRef"].get("name") == role["metadata"]["name"],
          "ClusterRoleBinding: roleRef must be the ClusterRole")
    check(crb.get("subjects") == [{"kind": "ServiceAccount", "name": sa["metadata"]["name"],
                                   "namespace": sa["metadata"]["namespace"]}],
          "ClusterRoleBinding: subjects must be exactly the proxy's ServiceAccount")

ing = [o for n in EXAMPLES for o in docs.get(n, [])]
for o in ing:
    ann = o.get("metadata", {}).get("annotations") or {}
    for a in ("proxy-read-timeout", "proxy-send-timeout"):
        check(ann.get(f"nginx.ingress.kubernetes.io/{a}") == "3600",
              f"ingress example: annotation nginx.ingress.kubernetes.io/{a} must be \"3600\"")

if len(failures) == rules_before:
    print("ok   project rules: ClusterRole, kustomization, Deployment security, cross-references")

if failures:
    print(f"validate-manifests: {len(failures)} failure(s)")
    sys.exit(1)
print(f"validate-manifests: {len(files)} files OK")
PY
