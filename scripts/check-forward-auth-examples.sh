#!/usr/bin/env bash
# Checks the forward-auth examples in k8s/forward-auth/ offline:
#  - jwtgate.yaml passes `jwtgate check --offline`;
#  - the Kubernetes objects (Deployment, Service, Ingress, ConfigMap) against
#    the $KUBE_VERSION OpenAPI schemas, strictly, with kubernetes-validate;
#  - envoy.yaml parses as an Envoy v3 Bootstrap with Envoy's own protobuf
#    definitions (PyPI xds-protos): unknown fields and wrong types fail;
#  - they agree with each other (scripts/forward-auth-examples.py): every
#    proxy points at the Service's ports, which are jwtgate's forward_auth
#    ports, copies exactly the claim headers the routes set, and fails
#    closed; Istio's policy names the provider the mesh config defines.
# Installs what is missing into a cached venv. Exits non-zero on a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
KUBE_VERSION=1.30.0
KV_VERSION=1.37.0
XDS_VERSION=1.85.0

say() { printf 'forward-auth-examples: %s\n' "$*"; }
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

venv=${XDG_CACHE_HOME:-$HOME/.cache}/jwtgate-ci/forward-auth-examples-$KV_VERSION-$XDS_VERSION
if [ ! -x "$venv/bin/kubernetes-validate" ] || ! "$venv/bin/python" -c 'import envoy.config.bootstrap.v3' 2>/dev/null; then
  say "installing kubernetes-validate==$KV_VERSION, xds-protos==$XDS_VERSION and pyyaml into $venv"
  python3 -m venv "$venv" 2>/dev/null || { apt_install python3-venv; rm -rf "$venv"; python3 -m venv "$venv"; }
  "$venv/bin/pip" install -q "kubernetes-validate==$KV_VERSION" "xds-protos==$XDS_VERSION" pyyaml
fi

say "cargo build --release --locked --bin jwtgate (for jwtgate check)"
cargo build --release --locked --bin jwtgate --quiet
bin=${CARGO_TARGET_DIR:-$root/target}/release/jwtgate
# The admin token the Deployment passes from its Secret.
JWTGATE_ADMIN_TOKEN=example-admin-token-0123456789 "$bin" check --offline -c k8s/forward-auth/jwtgate.yaml >/dev/null
say "jwtgate check --offline k8s/forward-auth/jwtgate.yaml: ok"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# Kubernetes' own kinds only: the Traefik and Istio CRDs have no bundled
# schema (the contract check reads them instead).
"$venv/bin/python" - "$tmp/core.yaml" k8s/forward-auth/*.yaml <<'PY'
import sys, yaml
out, docs = sys.argv[1], []
for path in sys.argv[2:]:
    if path.endswith("/jwtgate.yaml") or path.endswith("/envoy.yaml"):
        continue
    for doc in yaml.safe_load_all(open(path)):
        if doc and doc.get("apiVersion", "").split("/")[0] in ("v1", "apps", "networking.k8s.io"):
            docs.append(doc)
yaml.safe_dump_all(docs, open(out, "w"))
print(f"forward-auth-examples: {len(docs)} Kubernetes objects to validate")
PY
"$venv/bin/kubernetes-validate" --strict -k "$KUBE_VERSION" "$tmp/core.yaml" >"$tmp/kv.out" 2>&1 || {
  cat "$tmp/kv.out" >&2
  exit 1
}
if grep -qiE "warn|error|fail" "$tmp/kv.out"; then cat "$tmp/kv.out" >&2; exit 1; fi
say "kubernetes-validate --strict: ok"
"$venv/bin/python" scripts/forward-auth-examples.py k8s/forward-auth
