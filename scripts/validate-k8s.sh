#!/usr/bin/env bash
# Renders and validates the Kubernetes manifests:
#  - the base's Secret comes from git-ignored files: without them (a copy of
#    k8s/ minus k8s/base/secrets/) kustomize must fail naming
#    secrets/jwt-secret. Everything else renders a temp copy of k8s/ with
#    secrets fresh from scripts/gen-secrets.sh.
#  - the overlays' `images:` entries move the jwtgate image (the README's
#    "point kustomize at your image", as `kustomize edit set image` does).
#  - `kubectl kustomize` of k8s/base, k8s/overlays/dev, k8s/overlays/prod
#    (and k8s/webhook, k8s/monitoring when they have a kustomization.yaml).
#    The manifests stick to kustomize v2.0 syntax, so Debian bookworm's
#    kubectl 1.20 renders them as well as a current one.
#  - every rendered object against the Kubernetes $KUBE_VERSION OpenAPI
#    schemas, strictly (unknown fields fail), with kubernetes-validate
#    (pinned; its schemas are bundled, no network at validation time). An
#    object whose kind has no schema fails too (the tool only warns), except
#    Prometheus Operator resources (monitoring.coreos.com), which the
#    contract checks below cover instead.
#  - k8s/monitoring: one PodMonitor on jwtgate-admin /metrics without
#    credentials, 9901 opened to the namespace `monitoring` only, its config
#    the base's plus admin.metrics_auth: none, and jwtgate run on that
#    config answers a token-less /metrics 200 and /revocations 401.
#  - base/dev/prod: the jwtgate container against docs/sidecar-contract.md
#    (image, args, ports, probes, securityContext, resources, preStop,
#    grace period, volumes and mounts), pod securityContext, the Service
#    targets jwtgate-http, the NetworkPolicy opens 8080 and not 9901, a PDB,
#    the replica count and revocation store each overlay promises, Redis
#    url -> a rendered Service; and `jwtgate check` on the rendered
#    ConfigMap's jwtgate.yaml with the rendered Secret's and ConfigMap's
#    files laid out at the container's mount paths in a temp dir.
# Installs what is missing (kubernetes-client with apt, kubernetes-validate
# with pip in a cached venv). KUBECTL=/path/to/kubectl picks another kubectl.
# Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

KUBE_VERSION=1.30.0   # preStop.sleep needs >= 1.29 schemas
KV_VERSION=1.37.0     # kubernetes-validate, bundles schemas 1.25 .. 1.37

say() { printf 'validate-k8s: %s\n' "$*"; }
die() { printf 'validate-k8s: FAIL: %s\n' "$*" >&2; exit 1; }
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

kubectl=${KUBECTL:-kubectl}
if ! command -v "$kubectl" >/dev/null; then
  say "installing kubernetes-client (kubectl) with apt-get"
  apt_install kubernetes-client
  kubectl=kubectl
fi
command -v python3 >/dev/null || apt_install python3 python3-venv

kv=
if command -v kubernetes-validate >/dev/null \
  && [ "$(kubernetes-validate --version 2>/dev/null)" = "$KV_VERSION" ]; then
  kv=kubernetes-validate
else
  venv=${XDG_CACHE_HOME:-$HOME/.cache}/jwtgate-ci/kubernetes-validate-$KV_VERSION
  if [ ! -x "$venv/bin/kubernetes-validate" ]; then
    say "installing kubernetes-validate==$KV_VERSION into $venv"
    python3 -m venv "$venv" 2>/dev/null || { apt_install python3-venv; rm -rf "$venv"; python3 -m venv "$venv"; }
    "$venv/bin/pip" install -q "kubernetes-validate==$KV_VERSION"
  fi
  kv=$venv/bin/kubernetes-validate
fi
py=python3
if ! python3 -c 'import yaml' 2>/dev/null; then
  if [ -n "${venv:-}" ]; then py=$venv/bin/python; else apt_install python3-yaml; fi
fi

say "cargo build --release --locked --bin jwtgate (for jwtgate check)"
cargo build --release --locked --bin jwtgate --quiet
bin=${CARGO_TARGET_DIR:-$root/target}/release/jwtgate

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

say "kubectl: $("$kubectl" version --client --short 2>/dev/null || "$kubectl" version --client 2>/dev/null | head -n1)"
say "kubernetes-validate $("$kv" --version), schemas $KUBE_VERSION, --strict"

# The base's Secret comes from git-ignored files (scripts/gen-secrets.sh).
# Without them kustomize must stop, naming the file: never a made-up key.
cp -r k8s "$tmp/bare"
rm -rf "$tmp/bare/base/secrets"
if "$kubectl" kustomize "$tmp/bare/overlays/prod" >/dev/null 2>"$tmp/kustomize.err"; then
  die "k8s/overlays/prod renders without k8s/base/secrets/: a Secret would be applied that nobody generated"
fi
grep -q 'secrets/jwt-secret' "$tmp/kustomize.err" \
  || die "kustomize without the secret files failed, but not naming secrets/jwt-secret: $(cat "$tmp/kustomize.err")"
say "ok: without k8s/base/secrets/ kustomize refuses (secrets/jwt-secret: no such file)"
# The rest renders a copy with freshly generated secrets, never the
# developer's own k8s/base/secrets/.
k8s=$tmp/k8s
cp -r k8s "$k8s"
rm -rf "$k8s/base/secrets"
bash scripts/gen-secrets.sh "$k8s/base/secrets" >/dev/null

# The README's "point kustomize at your image": rewriting an overlay's
# images: entry (what `kustomize edit set image` does) moves the sidecar.
for set in overlays/dev overlays/prod; do
  cp -r "$k8s" "$tmp/moved"
  python3 - "$tmp/moved/$set/kustomization.yaml" <<'PY'
import re, sys
p = sys.argv[1]
s = open(p).read()
s2 = re.sub(r"(?m)^(\s+newName:).*$", r"\1 registry.example.test/team/jwtgate", s)
s2 = re.sub(r"(?m)^(\s+newTag:).*$", r"\1 9.9.9-test", s2)
if s2 == s or "name: ghcr.io/jwtgate/jwtgate" not in s:
    sys.exit(f"validate-k8s: FAIL: {p}: no images: entry for ghcr.io/jwtgate/jwtgate with newName/newTag")
open(p, "w").write(s2)
PY
  "$kubectl" kustomize "$tmp/moved/$set" 2>/dev/null | grep -q 'image: registry.example.test/team/jwtgate:9.9.9-test' \
    || die "k8s/$set: setting its images: entry does not change the jwtgate image"
  rm -rf "$tmp/moved"
done
say "ok: the overlays' images: entries set the jwtgate image"

sets=(base overlays/dev overlays/prod)
if [ -f k8s/webhook/kustomization.yaml ]; then sets+=(webhook); fi
if [ -f k8s/monitoring/kustomization.yaml ]; then sets+=(monitoring); fi
failed=0
for set in "${sets[@]}"; do
  out=$tmp/${set//\//-}.yaml
  if ! "$kubectl" kustomize "$k8s/$set" >"$out" 2>"$tmp/kustomize.err"; then
    cat "$tmp/kustomize.err" >&2
    die "kubectl kustomize k8s/$set failed"
  fi
  say "k8s/$set: rendered $(grep -c '^kind:' "$out") objects"
  # Custom resources (Prometheus Operator's PodMonitor) have no bundled
  # schema; they are checked by the contract checks below instead.
  "$py" - "$out" "$out.core" <<'PY'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
yaml.safe_dump_all([d for d in docs if d.get("apiVersion") != "monitoring.coreos.com/v1"],
                   open(sys.argv[2], "w"), sort_keys=False)
PY
  rc=0
  "$kv" --strict -k "$KUBE_VERSION" "$out.core" >"$tmp/kv.out" 2>&1 || rc=$?
  sed "s|$tmp/||" "$tmp/kv.out"
  if [ "$rc" != 0 ] || grep -qE '^(WARN|ERROR|FATAL)' "$tmp/kv.out"; then
    say "k8s/$set: schema validation FAILED"
    failed=1
  fi
done
[ "$failed" = 0 ] || die "schema validation failed"

# Contract, wiring and config checks on the rendered base and overlays.
"$py" - "$tmp" "$bin" <<'PY'
import base64, os, re, subprocess, sys, yaml
tmp, jwtgate = sys.argv[1:3]
errors = []

# What each rendering promises: replicas, revocation store.
expect = {"base": (2, "redis"), "overlays-dev": (1, "memory"), "overlays-prod": (3, "redis")}
if os.path.exists(os.path.join(tmp, "monitoring.yaml")):
    expect["monitoring"] = (3, "redis")
contract = {
    "image": "ghcr.io/jwtgate/jwtgate:0.1.0",
    "ports": [{"name": "jwtgate-http", "containerPort": 8080, "protocol": "TCP"},
              {"name": "jwtgate-admin", "containerPort": 9901, "protocol": "TCP"}],
    "livenessProbe.httpGet": {"path": "/healthz", "port": "jwtgate-admin"},
    "readinessProbe.httpGet": {"path": "/readyz", "port": "jwtgate-admin"},
    "securityContext": {"runAsNonRoot": True, "runAsUser": 65532, "runAsGroup": 65532,
                        "readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False,
                        "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}},
    "resources": {"requests": {"cpu": "50m", "memory": "32Mi"}, "limits": {"memory": "128Mi"}},
    "lifecycle": {"preStop": {"sleep": {"seconds": 5}}},
}

def get(obj, dotted):
    for k in dotted.split("."):
        obj = (obj or {}).get(k)
    return obj

def check_podmonitor(err, monitors, selects):
    """k8s/monitoring: one PodMonitor scrapes the sidecars' admin /metrics
    with no credentials (admin.metrics_auth: none opens just that path)."""
    mine = [m for m in monitors if selects(get(m, "spec.selector.matchLabels"))]
    if len(mine) != 1:
        return err(f"expected one PodMonitor selecting the pods, found {len(mine)}")
    eps = get(mine[0], "spec.podMetricsEndpoints") or []
    if [(e.get("port"), e.get("path")) for e in eps] != [("jwtgate-admin", "/metrics")]:
        err(f"PodMonitor endpoints {eps}: expected port jwtgate-admin, path /metrics")
    for e in eps:
        creds = sorted(set(e) & {"authorization", "bearerTokenSecret", "bearerTokenFile", "basicAuth", "oauth2"})
        if creds:
            err(f"PodMonitor endpoint carries credentials {creds}: Prometheus must never hold the admin token")

def check(name, objs):
    def err(msg): errors.append(f"{name}: {msg}")
    by = lambda kind: [o for o in objs if o["kind"] == kind]
    deps = by("Deployment")
    if len(deps) != 1:
        return err(f"expected one Deployment, found {len(deps)}")
    dep = deps[0]
    pod = dep["spec"]["template"]["spec"]
    labels = dep["spec"]["template"]["metadata"]["labels"]
    ctrs = {c["name"]: c for c in pod["containers"]}
    c = ctrs.get("jwtgate")
    if c is None:
        return err("no container named jwtgate")
    want_replicas, want_store = expect[name]
    if dep["spec"].get("replicas") != want_replicas:
        err(f"replicas {dep['spec'].get('replicas')}, expected {want_replicas}")

    # The sidecar contract.
    for key, want in contract.items():
        have = get(c, key)
        if key == "ports":
            have = [dict(p, protocol=p.get("protocol", "TCP")) for p in have or []]
        if have != want:
            err(f"jwtgate {key} = {have!r}, contract says {want!r}")
    args = c.get("args") or []
    if args[:4] != ["run", "-c", "/etc/jwtgate/jwtgate.yaml", "--upstream"] or len(args) != 5 \
            or not re.fullmatch(r"http://127\.0\.0\.1:\d+", args[4]):
        err(f"jwtgate args {args}: contract says run -c /etc/jwtgate/jwtgate.yaml --upstream http://127.0.0.1:<APP_PORT>")
        app_port = None
    else:
        app_port = args[4].rsplit(":", 1)[1]
        others = [o for n, o in ctrs.items() if n != "jwtgate"]
        if not any(f"127.0.0.1:{app_port}" in " ".join((o.get("command") or []) + (o.get("args") or []))
                   for o in others):
            err(f"no app container is told to listen on 127.0.0.1:{app_port}")
        for o in others:
            for p in o.get("ports") or []:
                if str(p.get("containerPort")) == app_port:
                    pass  # declaring it is fine; binding 127.0.0.1 is what matters
    if c.get("command"):
        err("jwtgate sets command; the image's ENTRYPOINT is jwtgate")
    if (pod.get("terminationGracePeriodSeconds") or 30) < 40:
        err(f"terminationGracePeriodSeconds {pod.get('terminationGracePeriodSeconds')} < 40")
    psc = pod.get("securityContext") or {}
    if psc.get("runAsNonRoot") is not True or get(psc, "seccompProfile.type") != "RuntimeDefault":
        err(f"pod securityContext {psc}: needs runAsNonRoot: true, seccompProfile RuntimeDefault")
    for n, o in ctrs.items():
        sc = o.get("securityContext") or {}
        if sc.get("readOnlyRootFilesystem") is not True or sc.get("allowPrivilegeEscalation") is not False:
            err(f"container {n}: readOnlyRootFilesystem/allowPrivilegeEscalation not locked down")
    vols = {v["name"]: v for v in pod.get("volumes") or []}
    mounts = {m["name"]: m for m in c.get("volumeMounts") or []}
    for vname, src, ref, path in (("jwtgate-config", "configMap", "name", "/etc/jwtgate"),
                                  ("jwtgate-secrets", "secret", "secretName", "/var/run/secrets/jwtgate")):
        if get(vols.get(vname), f"{src}.{ref}") != vname:
            err(f"volume {vname} must be {src} {vname}, is {vols.get(vname)}")
        m = mounts.get(vname) or {}
        if m.get("mountPath") != path or m.get("readOnly") is not True or m.get("subPath"):
            err(f"mount {vname} must be read-only at {path} without subPath, is {m}")

    selects = lambda sel: sel and all(labels.get(k) == v for k, v in sel.items())
    svcs = [s for s in by("Service") if selects(s["spec"].get("selector"))]
    if not any(p.get("targetPort") == "jwtgate-http" for s in svcs for p in s["spec"]["ports"]):
        err("no Service selecting the pods targets port jwtgate-http")
    for s in svcs:
        for p in s["spec"]["ports"]:
            if p.get("targetPort") not in ("jwtgate-http", 8080):
                err(f"Service {s['metadata']['name']} exposes targetPort {p.get('targetPort')} around jwtgate")
    nps = [n for n in by("NetworkPolicy") if selects(get(n, "spec.podSelector.matchLabels"))]
    scrapers = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    monitoring_rules = 0
    if not nps:
        err("no NetworkPolicy selects the pods")
    for n in nps:
        if "Ingress" not in n["spec"].get("policyTypes", ["Ingress"]):
            err(f"NetworkPolicy {n['metadata']['name']} does not restrict ingress")
        for r in n["spec"].get("ingress") or []:
            ports = [p.get("port") for p in r.get("ports") or [None]]
            if ports and all(p in (8080, "jwtgate-http") for p in ports):
                continue
            if name == "monitoring" and ports == [9901] and r.get("from") == [scrapers]:
                monitoring_rules += 1
                continue
            err(f"NetworkPolicy {n['metadata']['name']} allows ports {ports} from {r.get('from', 'anywhere')}; "
                "only 8080 may be open, and 9901 only to the monitoring namespace in k8s/monitoring")
    if name == "monitoring":
        if monitoring_rules != 1:
            err(f"{monitoring_rules} NetworkPolicy rules admit {scrapers} to 9901, expected 1")
        check_podmonitor(err, by("PodMonitor"), selects)
    if not any(selects(get(p, "spec.selector.matchLabels")) for p in by("PodDisruptionBudget")):
        err("no PodDisruptionBudget selects the pods")

    # The config, as the container sees it.
    cms = {o["metadata"]["name"]: o for o in by("ConfigMap")}
    secrets = {o["metadata"]["name"]: o for o in by("Secret")}
    cm, sec = cms.get("jwtgate-config"), secrets.get("jwtgate-secrets")
    if not cm or "jwtgate.yaml" not in (cm.get("data") or {}):
        return err("no ConfigMap jwtgate-config with key jwtgate.yaml")
    if not sec:
        return err("no Secret jwtgate-secrets")
    sec_files = {k: v.encode() for k, v in (sec.get("stringData") or {}).items()}
    sec_files.update({k: base64.b64decode(v) for k, v in (sec.get("data") or {}).items()})
    for k in ("jwt-secret", "admin-token"):
        if k not in sec_files:
            err(f"Secret jwtgate-secrets has no key {k}")
    root = os.path.join(tmp, "pod-" + name)
    files = {"/etc/jwtgate": {k: v.encode() for k, v in cm["data"].items()},
             "/var/run/secrets/jwtgate": sec_files}
    for mp, kv in files.items():
        os.makedirs(root + mp, exist_ok=True)
        for k, v in kv.items():
            open(os.path.join(root + mp, k), "wb").write(v)
    text = cm["data"]["jwtgate.yaml"]
    cfg = yaml.safe_load(text)
    if cfg.get("listen", "").rsplit(":", 1)[-1] != "8080" or not cfg.get("listen", "").startswith("0.0.0.0:"):
        err(f"config listen {cfg.get('listen')}: must be 0.0.0.0:8080 (port jwtgate-http)")
    if get(cfg, "admin.listen") != "0.0.0.0:9901":
        err(f"config admin.listen {get(cfg, 'admin.listen')}: contract says 0.0.0.0:9901 (kubelet probes)")
    metrics_auth = get(cfg, "admin.metrics_auth")
    if name == "monitoring":
        if metrics_auth != "none":
            err(f"admin.metrics_auth is {metrics_auth}: the PodMonitor scrapes without a token, so it must be none")
        base_cfg = yaml.safe_load(open("k8s/base/jwtgate.yaml"))
        same = yaml.safe_load(text)
        same["admin"].pop("metrics_auth", None)
        if same != base_cfg:
            err("k8s/monitoring/jwtgate.yaml differs from k8s/base/jwtgate.yaml in more than admin.metrics_auth")
    elif metrics_auth == "none":
        err("admin.metrics_auth: none outside k8s/monitoring: /metrics would be open to anyone reaching 9901")
    store = get(cfg, "revocation.store")
    if store != want_store:
        err(f"revocation.store {store}, expected {want_store}")
    if store == "redis":
        url = get(cfg, "revocation.redis.url") or ""
        m = re.fullmatch(r"rediss?://(?:[^@/]*@)?([^:/]+)(?::(\d+))?(?:/\d+)?", url)
        if not m:
            err(f"revocation.redis.url {url!r} not understood")
        elif name != "base":
            host, port = m.group(1), int(m.group(2) or 6379)
            svc = next((s for s in by("Service") if s["metadata"]["name"] == host.split(".")[0]), None)
            if not svc or port not in [p["port"] for p in svc["spec"]["ports"]]:
                err(f"redis url {url}: no rendered Service {host} with port {port}")
    def walk(x, path=""):
        if isinstance(x, dict):
            for k, v in x.items():
                p = f"{path}.{k}" if path else str(k)
                if str(k).endswith("_env") and v not in [e["name"] for e in c.get("env") or []]:
                    err(f"config {p}: env {v} is not set on the jwtgate container")
                if str(k).endswith("_file"):
                    mp = next((mp for mp in files if str(v).startswith(mp + "/")), None)
                    if mp is None or str(v)[len(mp) + 1:] not in files[mp]:
                        err(f"config {p}: {v} is provided by no mounted key")
                walk(v, p)
        elif isinstance(x, list):
            for i, v in enumerate(x):
                walk(v, f"{path}[{i}]")
    walk(cfg)
    for mp in files:
        text = text.replace(mp + "/", root + mp + "/")
    path = os.path.join(root, "jwtgate.yaml")
    open(path, "w").write(text)
    r = subprocess.run([jwtgate, "check", "-c", path], capture_output=True, text=True)
    if r.returncode != 0:
        err(f"jwtgate check on the rendered jwtgate.yaml failed:\n{r.stdout}{r.stderr}")
    else:
        print(f"validate-k8s: {name}: contract ok; replicas {want_replicas}; store {store}; "
              f"jwtgate check ok on the rendered ConfigMap with the Secret's files")
        if name == "monitoring":
            scrape_without_token(err, path)

def scrape_without_token(err, path):
    """Runs jwtgate on the rendered monitoring config (loopback listeners,
    memory store: no Redis here) and scrapes as the PodMonitor does: no
    token. /metrics must answer 200, the rest of the admin API 401."""
    import time, urllib.error, urllib.request
    cfg = yaml.safe_load(open(path))
    cfg["listen"], cfg["admin"]["listen"] = "127.0.0.1:0", "127.0.0.1:0"
    cfg["revocation"] = {"store": "memory"}
    run_path = path + ".run.yaml"
    yaml.safe_dump(cfg, open(run_path, "w"))
    out = open(run_path + ".out", "w+")
    proc = subprocess.Popen([jwtgate, "run", "-c", run_path], stdout=out, stderr=subprocess.DEVNULL)
    try:
        admin = None
        for _ in range(100):
            out.seek(0)
            admin = next((l.split("http://", 1)[1].strip() for l in out if l.startswith("jwtgate admin listening")), None)
            if admin or proc.poll() is not None:
                break
            time.sleep(0.1)
        if not admin:
            return err("jwtgate on the monitoring config printed no admin address")
        def status(p):
            try:
                return urllib.request.urlopen(f"http://{admin}{p}", timeout=5).status
            except urllib.error.HTTPError as e:
                return e.code
        got = {p: status(p) for p in ("/metrics", "/revocations?iss=x&jti=y")}
        if got != {"/metrics": 200, "/revocations?iss=x&jti=y": 401}:
            return err(f"without a token the monitoring config answers {got}; expected /metrics 200, /revocations 401")
        print("validate-k8s: monitoring: a token-less scrape of /metrics is 200, /revocations stays 401")
    finally:
        proc.terminate()
        proc.wait(timeout=10)

for name in expect:
    objs = [o for o in yaml.safe_load_all(open(os.path.join(tmp, name + ".yaml"))) if o]
    check(name, objs)
if errors:
    print("\n".join("validate-k8s: FAIL: " + e for e in errors), file=sys.stderr)
    sys.exit(1)
PY
say "all checks passed ($(printf 'k8s/%s ' "${sets[@]}"))"
