#!/usr/bin/env bash
# Every pod we ship or inject meets the Pod Security Standards "restricted"
# profile (scripts/pod-security.py has the rules):
#  1. self-test: a deliberately bad pod is refused on every rule, a good
#     CronJob accepted (a checker that passes everything fails here);
#  2. `kubectl kustomize` of k8s/base, k8s/overlays/dev, k8s/overlays/prod,
#     k8s/webhook and k8s/monitoring (those with a kustomization.yaml),
#     rendered from a temp copy of k8s/ with secrets fresh from
#     scripts/gen-secrets.sh, as scripts/validate-k8s.sh renders them;
#  3. `jwtgate inject --services` on a sample of restricted-clean workloads
#     (Deployment, StatefulSet, DaemonSet, Job, CronJob, Pod): the sample
#     passes before, every workload gets the sidecar, and the output passes
#     too, so whatever inject adds (container, volumes, native sidecar) is
#     restricted-clean.
# Installs what is missing (kubernetes-client, python3-yaml); builds the
# release binary (a no-op when fresh). Exits non-zero on any violation.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

say() { printf 'check-pod-security: %s\n' "$*"; }
die() { printf 'check-pod-security: FAIL: %s\n' "$*" >&2; exit 1; }
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

kubectl=${KUBECTL:-kubectl}
command -v "$kubectl" >/dev/null || { apt_install kubernetes-client; kubectl=kubectl; }
command -v python3 >/dev/null || apt_install python3
python3 -c 'import yaml' 2>/dev/null || apt_install python3-yaml
check=(python3 scripts/pod-security.py)

"${check[@]}" --self-test || die "the checker's self-test failed: it cannot be trusted"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp -r k8s "$tmp/k8s"
rm -rf "$tmp/k8s/base/secrets"
bash scripts/gen-secrets.sh "$tmp/k8s/base/secrets" >/dev/null

files=()
for set in base overlays/dev overlays/prod webhook monitoring; do
  [ -f "k8s/$set/kustomization.yaml" ] || continue
  out=$tmp/${set//\//-}.yaml
  "$kubectl" kustomize "$tmp/k8s/$set" >"$out" 2>"$tmp/kustomize.err" \
    || { cat "$tmp/kustomize.err" >&2; die "kubectl kustomize k8s/$set failed"; }
  files+=("$out")
done
# The shared forward-auth authorizer (plain manifests, no kustomization).
files+=(k8s/forward-auth/authz.yaml)

say "cargo build --release --locked --bin jwtgate (for jwtgate inject)"
cargo build --release --locked --bin jwtgate --quiet
bin=${CARGO_TARGET_DIR:-$root/target}/release/jwtgate

# Each workload is restricted-clean on its own, so any violation after
# inject is the sidecar's.
cat >"$tmp/sample.yaml" <<'YAML'
apiVersion: apps/v1
kind: Deployment
metadata: { name: orders }
spec:
  selector: { matchLabels: { app: orders } }
  template:
    metadata: { labels: { app: orders, jwtgate.io/inject: "true" } }
    spec:
      securityContext: { runAsNonRoot: true, seccompProfile: { type: RuntimeDefault } }
      containers:
        - name: app
          image: example/orders:1
          ports: [{ name: http, containerPort: 3000 }]
          securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: [ALL] } }
---
apiVersion: v1
kind: Service
metadata: { name: orders }
spec:
  selector: { app: orders }
  ports: [{ port: 80, targetPort: http }]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: { name: ledger }
spec:
  serviceName: ledger
  selector: { matchLabels: { app: ledger } }
  template:
    metadata: { labels: { app: ledger }, annotations: { jwtgate.io/inject: "true" } }
    spec:
      containers:
        - name: app
          image: example/ledger:1
          ports: [{ containerPort: 4000 }]
          securityContext:
            runAsNonRoot: true
            runAsUser: 1000
            allowPrivilegeEscalation: false
            seccompProfile: { type: RuntimeDefault }
            capabilities: { drop: [ALL] }
---
apiVersion: apps/v1
kind: DaemonSet
metadata: { name: agent }
spec:
  selector: { matchLabels: { app: agent } }
  template:
    metadata: { labels: { app: agent }, annotations: { jwtgate.io/inject: "true" } }
    spec:
      securityContext: { runAsNonRoot: true, seccompProfile: { type: Localhost, localhostProfile: agent.json } }
      containers:
        - name: app
          image: example/agent:1
          ports: [{ containerPort: 5000 }]
          securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: [ALL], add: [NET_BIND_SERVICE] } }
---
apiVersion: batch/v1
kind: Job
metadata: { name: report }
spec:
  template:
    metadata: { annotations: { jwtgate.io/inject: "true" } }
    spec:
      restartPolicy: Never
      securityContext: { runAsNonRoot: true, seccompProfile: { type: RuntimeDefault } }
      initContainers:
        - name: migrate
          image: example/migrate:1
          securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: [ALL] } }
      containers:
        - name: app
          image: example/report:1
          ports: [{ containerPort: 8000 }]
          securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: [ALL] } }
---
apiVersion: batch/v1
kind: CronJob
metadata: { name: nightly }
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      template:
        metadata: { annotations: { jwtgate.io/inject: "true" } }
        spec:
          restartPolicy: Never
          securityContext: { runAsNonRoot: true, seccompProfile: { type: RuntimeDefault } }
          volumes: [{ name: scratch, emptyDir: {} }]
          containers:
            - name: app
              image: example/nightly:1
              ports: [{ containerPort: 8000 }]
              volumeMounts: [{ name: scratch, mountPath: /tmp }]
              securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: [ALL] } }
---
apiVersion: v1
kind: Pod
metadata: { name: debug-api, annotations: { jwtgate.io/inject: "true" } }
spec:
  securityContext: { runAsNonRoot: true, seccompProfile: { type: RuntimeDefault } }
  containers:
    - name: app
      image: example/debug:1
      ports: [{ containerPort: 7000 }]
      securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: [ALL] } }
YAML
"${check[@]}" "$tmp/sample.yaml" >/dev/null || die "the inject sample itself is not restricted-clean (fix the sample)"
"$bin" inject --services -f "$tmp/sample.yaml" >"$tmp/injected.yaml" 2>"$tmp/inject.err" \
  || { cat "$tmp/inject.err" >&2; die "jwtgate inject failed on the sample"; }
python3 -B - "$tmp/injected.yaml" <<'PY'
import sys, yaml
sys.path.insert(0, "scripts")
ps = __import__("pod-security")
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
pods = [(d, p) for d in docs for _, p in ps.pod_specs(d)]
lacking = [f"{d['kind']}/{d['metadata']['name']}" for d, p in pods
           if not any(c.get("name") == "jwtgate" for lst in ps.CONTAINER_LISTS for c in p.get(lst) or [])]
if len(pods) != 6 or lacking:
    sys.exit(f"check-pod-security: FAIL: jwtgate inject left {lacking or 'pods missing'} without the sidecar "
             f"({len(pods)} pod templates, expected 6)")
PY
files+=("$tmp/injected.yaml")

rc=0
"${check[@]}" "${files[@]}" 2>&1 | sed "s|$tmp/||" || rc=${PIPESTATUS[0]}
[ "$rc" = 0 ] || die "pod templates above break the restricted profile"
say "all pod templates meet Pod Security restricted ($(basename -a "${files[@]}" | tr '\n' ' '))"
