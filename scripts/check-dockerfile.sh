#!/usr/bin/env bash
# Checks the Dockerfile as far as possible without a container engine:
#  1. static: the build stage is rust:*-bookworm and runs
#     `cargo build --release --locked --bin <a real [[bin]] of Cargo.toml>`
#     with only features Cargo.toml declares; the runtime stage is a
#     debian12/bookworm image (same glibc); every COPY source exists and is
#     let through by .dockerignore; COPY --from names an earlier stage;
#     USER is a numeric non-root uid:gid; EXPOSE has 8080 and 9901 and they
#     are the config's ports; ENTRYPOINT is the binary the final stage
#     copies; CMD's -c path is the file a COPY installs.
#  2. build context: only the files the build stage COPYs, put where it puts
#     them, are enough for cargo to load the package (`cargo build --bin
#     <probe>` must fail with "no bin target named", not a manifest error).
#  3. the installed config passes `jwtgate check`, with the Secret's files
#     (the base kustomization's secretGenerator over files that
#     scripts/gen-secrets.sh writes), laid out in a temp dir where
#     k8s/base/deployment.yaml mounts them.
#  3a. the build stage's strip step, applied to a copy of the release
#     binary: prints the size before and after, and that copy (no .debug_*
#     sections left) is what 3 and 4 run. The static checks above require
#     that step, on the file the final stage copies, and OCI labels (title,
#     description, licenses as in Cargo.toml, source, version from an ARG
#     defaulting to Cargo.toml's version, revision from an ARG).
#  4. the stripped release binary runs as 65532:65532 (setpriv; the current user when
#     not root) from a read-only directory with that config and CMD's args:
#     both "listening" lines appear, admin /healthz is 200, the public port
#     answers 401 without a token, then it is stopped by PID.
# Builds the release binary when needed. Exits non-zero on any mismatch.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

say() { printf 'check-dockerfile: %s\n' "$*"; }
die() { printf 'check-dockerfile: FAIL: %s\n' "$*" >&2; exit 1; }

# shellcheck source=scripts/lib.sh
. scripts/lib.sh
command -v python3 >/dev/null || apt_install python3
python3 -c 'import yaml' 2>/dev/null || apt_install python3-yaml
if [ "$(id -u)" = 0 ] && ! command -v setpriv >/dev/null; then apt_install util-linux; fi

# cargo no-ops when the binary is fresh; a stale one would test old flags.
say "cargo build --release --locked --bin jwtgate"
cargo build --release --locked --bin jwtgate --quiet
bin=${CARGO_TARGET_DIR:-$root/target}/release/jwtgate
[ -x "$bin" ] || die "$bin missing after the build"

tmp=$(mktemp -d)
pid=
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
  chmod -R u+w "$tmp" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

cargo metadata --no-deps --locked --offline --format-version 1 >"$tmp/metadata.json"

# --- 1. static checks; writes facts for the later steps to $tmp/facts.sh ---
python3 - "$tmp" <<'PY'
import fnmatch, glob, json, os, re, shlex, sys
tmp = sys.argv[1]
errors = []
def err(msg): errors.append(msg)

meta = json.load(open(os.path.join(tmp, "metadata.json")))
pkg = next(p for p in meta["packages"] if os.path.dirname(p["manifest_path"]) == os.getcwd())
bins = [t["name"] for t in pkg["targets"] if "bin" in t["kind"]]
features = set(pkg["features"])
rust_version = pkg.get("rust_version")

# Parse: comments dropped, continuations joined.
lines, cur = [], ""
for raw in open("Dockerfile").read().splitlines():
    s = raw.strip()
    if not cur and (not s or s.startswith("#")):
        continue
    if cur and s.startswith("#"):
        continue
    if s.endswith("\\"):
        cur += s[:-1] + " "
        continue
    lines.append(cur + s)
    cur = ""
if cur:
    lines.append(cur)

stages = []  # {"name", "image", "ins": [(op, args)]}
for line in lines:
    op, _, rest = line.partition(" ")
    op = op.upper()
    if op == "FROM":
        w = rest.split()
        name = w[2] if len(w) >= 3 and w[1].lower() == "as" else None
        stages.append({"name": name, "image": w[0], "ins": []})
    elif op in ("ARG",) and not stages:
        continue
    elif not stages:
        err(f"instruction before FROM: {line}")
    else:
        stages[-1]["ins"].append((op, rest.strip()))

if len(stages) < 2:
    err(f"expected a multi-stage build, found {len(stages)} stage(s)")
    print("\n".join("FAIL: " + e for e in errors), file=sys.stderr); sys.exit(1)
build, final = stages[:-1], stages[-1]

m = re.fullmatch(r"rust:(1(?:\.(\d+))?(?:\.\d+)?)-bookworm", build[0]["image"])
if not m:
    err(f"build stage image {build[0]['image']!r}: expected rust:1-bookworm or a pinned rust:1.NN-bookworm")
elif m.group(2) and rust_version and int(m.group(2)) < int(rust_version.split(".")[1]):
    err(f"build image rust {m.group(1)} is older than Cargo.toml rust-version {rust_version}")
if final["image"] not in ("gcr.io/distroless/cc-debian12:nonroot", "gcr.io/distroless/cc-debian12",
                          "debian:bookworm-slim") and not final["image"].startswith("gcr.io/distroless/cc-debian12@"):
    err(f"runtime image {final['image']!r}: expected distroless cc-debian12 or debian:bookworm-slim "
        "(same glibc as the bookworm build stage)")

# The cargo build command.
built = []
build_env = {}  # VAR=value words in front of it
for st in build:
    for op, args in st["ins"]:
        if op != "RUN":
            continue
        cmd = re.sub(r"--mount=\S+", "", args)
        for part in re.split(r"&&|;|\|\|", cmd):
            w = shlex.split(part)
            env = dict(x.split("=", 1) for x in w[:next((i for i, x in enumerate(w) if not
                                                          re.fullmatch(r"\w+=.*", x, re.S)), len(w))])
            w = w[len(env):]
            if w[:2] != ["cargo", "build"]:
                continue
            build_env.update(env)
            built.append(w)
            if "--release" not in w: err(f"`{part.strip()}`: no --release")
            if "--locked" not in w: err(f"`{part.strip()}`: no --locked (Cargo.lock would not be enforced)")
            names = [w[i + 1] for i, x in enumerate(w[:-1]) if x == "--bin"]
            names += [x.split("=", 1)[1] for x in w if x.startswith("--bin=")]
            if not names:
                err(f"`{part.strip()}`: no --bin (expected one of {bins})")
            for n in names:
                if n not in bins:
                    err(f"`{part.strip()}`: --bin {n} is not a binary of Cargo.toml (has {bins})")
            for i, x in enumerate(w):
                val = None
                if x in ("--features", "-F") and i + 1 < len(w): val = w[i + 1]
                elif x.startswith("--features="): val = x.split("=", 1)[1]
                if val is not None:
                    for f in re.split(r"[ ,]+", val.strip()):
                        if f and f not in features:
                            err(f"`{part.strip()}`: feature {f!r} is not in Cargo.toml (has {sorted(features)})")
                if x in ("-p", "--package") and i + 1 < len(w) and w[i + 1] != pkg["name"]:
                    err(f"`{part.strip()}`: package {w[i+1]!r} is not {pkg['name']!r}")
if not built:
    err("no `cargo build` in any build stage")
# A build script is part of the package: the build stage must copy it, and
# when it stamps the commit from JWTGATE_COMMIT, that must be the REVISION
# argument the revision label shows.
for t in pkg["targets"]:
    if "custom-build" in t["kind"]:
        script = os.path.relpath(t["src_path"])
        copied = [src for st in build for op, args in st["ins"] if op == "COPY" and "--from" not in args
                  for src in shlex.split(args)[:-1]]
        if script not in copied:
            err(f"the build stage does not COPY {script} (Cargo.toml's build script): cargo would skip it")
        if "JWTGATE_COMMIT" in open(script).read() and "REVISION" not in build_env.get("JWTGATE_COMMIT", ""):
            err(f"{script} reads JWTGATE_COMMIT; the cargo build must set it from $REVISION "
                f"(has {build_env.get('JWTGATE_COMMIT')!r})")

# .dockerignore (last matching pattern wins; a match on a parent dir counts).
ignore = []
if os.path.exists(".dockerignore"):
    for l in open(".dockerignore").read().splitlines():
        l = l.strip()
        if l and not l.startswith("#"):
            neg = l.startswith("!")
            ignore.append((neg, l.lstrip("!").strip("/")))
def ignored(path):
    parts = path.strip("/").split("/")
    out = False
    for neg, pat in ignore:
        for i in range(1, len(parts) + 1):
            if fnmatch.fnmatchcase("/".join(parts[:i]), pat):
                out = not neg
                break
    return out

def copy_args(args):
    w = shlex.split(args)
    flags = [x for x in w if x.startswith("--")]
    rest = [x for x in w if not x.startswith("--")]
    frm = next((f.split("=", 1)[1] for f in flags if f.startswith("--from=")), None)
    return frm, rest[:-1], rest[-1]

stage_names = []
context_copies = []  # (src, dest, workdir) of the build stage(s)
final_copies = []    # (from, src, dest)
for idx, st in enumerate(stages):
    workdir = "/"
    for op, args in st["ins"]:
        if op == "WORKDIR":
            workdir = os.path.join(workdir, args)
        if op in ("COPY", "ADD"):
            frm, srcs, dest = copy_args(args)
            if op == "ADD":
                err(f"ADD {args}: use COPY")
            if frm is not None:
                if frm not in stage_names and not frm.isdigit():
                    err(f"COPY --from={frm}: no earlier stage of that name (have {stage_names})")
            else:
                for s in srcs:
                    hits = glob.glob(s)
                    if not hits:
                        err(f"COPY source {s!r} does not exist in the repository")
                    for h in hits:
                        if ignored(h):
                            err(f"COPY source {h!r} is excluded by .dockerignore")
                    if st is not final:
                        context_copies.append((s, dest, workdir))
            if st is final:
                final_copies.append((frm, srcs, dest))
    if st["name"]:
        stage_names.append(st["name"])

fins = dict()
for op, args in final["ins"]:
    fins.setdefault(op, []).append(args)

user = (fins.get("USER") or [""])[-1]
if not re.fullmatch(r"\d+(:\d+)?", user):
    err(f"final USER {user!r}: must be numeric uid:gid (runAsNonRoot cannot check a name)")
elif user.split(":")[0] == "0":
    err("final USER is root")
uid, _, gid = user.partition(":")

exposed = set()
for e in fins.get("EXPOSE", []):
    exposed |= {p.split("/")[0] for p in e.split()}
for p in ("8080", "9901"):
    if p not in exposed:
        err(f"EXPOSE lacks {p} (has {sorted(exposed)})")

def exec_form(op):
    v = (fins.get(op) or [None])[-1]
    if v is None:
        err(f"final stage has no {op}"); return []
    try:
        j = json.loads(v)
        assert isinstance(j, list) and all(isinstance(x, str) for x in j)
        return j
    except Exception:
        err(f"{op} {v}: must be exec (JSON array) form so signals reach jwtgate"); return []
entry, cmd = exec_form("ENTRYPOINT"), exec_form("CMD")

if entry:
    exe = entry[0]
    if os.path.basename(exe) not in bins:
        err(f"ENTRYPOINT {exe!r} is not a binary of Cargo.toml ({bins})")
    dests = [d for f, _, d in final_copies if f is not None]
    paths = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]
    cands = [exe] if exe.startswith("/") else [os.path.join(p, exe) for p in paths]
    if not any(d in cands or (d.endswith("/") and os.path.join(d, os.path.basename(exe)) in cands) for d in dests):
        err(f"ENTRYPOINT {exe!r}: no COPY --from=<build stage> installs it on the PATH (dests {dests})")
    for f, srcs, d in final_copies:
        if f is not None and os.path.basename(d.rstrip("/")) == os.path.basename(exe):
            for s in srcs:
                if os.path.basename(s) not in bins:
                    err(f"COPY --from={f} {s}: the source is not the built binary")

cfg_path = None
for i, x in enumerate(cmd):
    if x in ("-c", "--config") and i + 1 < len(cmd):
        cfg_path = cmd[i + 1]
    elif x.startswith("--config="):
        cfg_path = x.split("=", 1)[1]
if not cmd or cmd[0] != "run":
    err(f"CMD {cmd}: expected [\"run\", \"-c\", <config>]")
cfg_src = None
if cfg_path is None:
    err(f"CMD {cmd}: no -c <config>")
else:
    for f, srcs, d in final_copies:
        if f is None and (d == cfg_path or (d.endswith("/") and len(srcs) == 1 and
                                             os.path.join(d, os.path.basename(srcs[0])) == cfg_path)):
            cfg_src = srcs[0]
    if cfg_src is None:
        err(f"CMD config {cfg_path} is not installed by any COPY of the final stage")

# The strip step: the release profile keeps line tables, the image must not.
# It has to act on the file the final stage copies out of the build stage
# (COPY --from sources are relative to that stage's root).
bin_src = next((os.path.join("/", srcs[0]) for frm, srcs, d in final_copies
                if frm is not None and srcs and os.path.basename(srcs[0]) in bins), None)
strip = []
for st in build:
    for op, args in st["ins"]:
        if op != "RUN":
            continue
        for part in re.split(r"&&|;|\|\|", re.sub(r"--mount=\S+", "", args)):
            w = shlex.split(part)
            if w and w[0] in ("strip", "objcopy"):
                strip.append(w)
if not strip:
    err("no `strip`/`objcopy --strip-*` of the binary in the build stage: the image would carry the "
        "release profile's line tables (~63 MiB)")
elif len(strip) > 1 or strip[0][-1] != bin_src:
    err(f"strip steps {strip}: expected one, on {bin_src} (what the final stage copies)")

# OCI labels: what the image is, from where, under which licence and commit.
args_default = {}
labels = {}
for op, args in final["ins"]:
    if op == "ARG":
        name, _, default = args.partition("=")
        args_default[name.strip()] = default.strip().strip('"')
    if op == "LABEL":
        for kv in shlex.split(args):
            k, _, v = kv.partition("=")
            labels[k] = v
def from_arg(key, want_default=None):
    v = labels.get(key, "")
    m = re.fullmatch(r"\$\{?(\w+)\}?", v)
    if not m or m.group(1) not in args_default:
        return err(f"LABEL {key}={v!r}: expected ${{ARG}} of an ARG declared in the final stage")
    if want_default is not None and args_default[m.group(1)] != want_default:
        err(f"ARG {m.group(1)} defaults to {args_default[m.group(1)]!r}, Cargo.toml says {want_default!r}")
oci = "org.opencontainers.image."
for key, want in (("title", pkg["name"]), ("description", pkg.get("description")),
                  ("licenses", pkg.get("license"))):
    if labels.get(oci + key) != want:
        err(f"LABEL {oci}{key}={labels.get(oci + key)!r}, Cargo.toml says {want!r}")
if not labels.get(oci + "source", "").startswith("https://"):
    err(f"LABEL {oci}source={labels.get(oci + 'source')!r}: expected the repository's https URL")
from_arg(oci + "version", pkg["version"])
from_arg(oci + "revision")

if errors:
    print("\n".join("check-dockerfile: FAIL: " + e for e in errors), file=sys.stderr)
    sys.exit(1)

with open(os.path.join(tmp, "facts.sh"), "w") as f:
    f.write(f"bin_name={shlex.quote(entry[0].split('/')[-1])}\n")
    f.write(f"cfg_src={shlex.quote(cfg_src)}\ncfg_path={shlex.quote(cfg_path)}\n")
    f.write(f"run_uid={uid}\nrun_gid={gid or uid}\n")
    f.write("cmd_args=(" + " ".join(shlex.quote(x) for x in cmd) + ")\n")
    f.write(f"built_bins={shlex.quote(' '.join(n for w in built for i, n in enumerate(w) if i and w[i-1] == '--bin'))}\n")
    f.write(f"exposed={shlex.quote(' '.join(sorted(exposed)))}\n")
    f.write("strip_cmd=(" + " ".join(shlex.quote(x) for x in strip[0][:-1]) + ")\n")
with open(os.path.join(tmp, "context.txt"), "w") as f:
    for s, d, wd in context_copies:
        f.write(f"{s}\t{os.path.join(wd, d)}\n")
print(f"check-dockerfile: ok: stages {[s['image'] for s in stages]}; cargo builds --bin "
      f"{[n for w in built for i, n in enumerate(w) if i and w[i-1] == '--bin']} (Cargo.toml bins {bins}); "
      f"USER {user}; EXPOSE {sorted(exposed)}; ENTRYPOINT {entry}; CMD {cmd}; config {cfg_src} -> {cfg_path}")
PY
# shellcheck disable=SC1091
. "$tmp/facts.sh"

# --- 2. the build stage's COPYs are a loadable cargo package ---
ctx=$tmp/context
mkdir -p "$ctx"

while IFS=$'\t' read -r src dest; do
  d=$ctx$dest
  case $dest in */) mkdir -p "$d"; cp -r $src "$d" ;; *) if [ -d "$src" ]; then mkdir -p "$d"; cp -r "$src"/. "$d"; else mkdir -p "$(dirname "$d")"; cp "$src" "$d"; fi ;; esac
done <"$tmp/context.txt"
manifest=$(find "$ctx" -maxdepth 3 -name Cargo.toml | head -n1)
[ -n "$manifest" ] || die "the build stage copies no Cargo.toml"
probe_out=$(cd "$(dirname "$manifest")" && CARGO_TARGET_DIR=$tmp/probe-target cargo build --offline --locked --release --bin zz-context-probe 2>&1 || true)
grep -q "no bin target named .zz-context-probe." <<<"$probe_out" \
  || die "cargo cannot load the package from the build stage's COPYs alone:
$probe_out"
for b in $built_bins; do
  grep -qE "^ +$b\$" <<<"$probe_out" || die "the build context has no bin target $b:
$probe_out"
done
say "ok: the build stage's COPYs ($(cut -f1 "$tmp/context.txt" | tr '\n' ' ')) load as a cargo package with bin(s) $built_bins"

# --- 3. jwtgate check on the installed config, secrets as the pod has them ---
# Lays out <dir>/<mountPath>/<key> for the jwtgate container's Secret and
# ConfigMap-less mounts, and writes the config with those paths rewritten.
layout() { # layout <dir> <admin listen override or ''>
  python3 - "$1" "$cfg_src" "$2" "$tmp/secrets" <<'PY'
import base64, os, sys, yaml
out, cfg_src, admin_listen, secrets_dir = sys.argv[1:5]
docs = lambda f: [d for d in yaml.safe_load_all(open(f)) if d]
# The Secrets the base's secretGenerator makes, from files scripts/gen-secrets.sh
# wrote to $secrets_dir (by basename; `key=path` entries name their key).
kust = yaml.safe_load(open("k8s/base/kustomization.yaml"))
secrets = {}
for g in kust.get("secretGenerator") or []:
    data = {}
    for entry in g.get("files") or []:
        key, _, path = entry.rpartition("=")
        key = key or os.path.basename(path)
        data[key] = base64.b64encode(open(os.path.join(secrets_dir, os.path.basename(path)), "rb").read()).decode()
    secrets[g["name"]] = {"data": data}
dep = next(d for d in docs("k8s/base/deployment.yaml") if d["kind"] == "Deployment")
pod = dep["spec"]["template"]["spec"]
ctr = next(c for c in pod["containers"] if c["name"] == "jwtgate")
vols = {v["name"]: v for v in pod["volumes"]}
text = open(cfg_src).read()
mounts = []
for m in ctr.get("volumeMounts", []):
    v = vols[m["name"]]
    if "secret" in v:
        s = secrets[v["secret"]["secretName"]]
        files = {k: val.encode() for k, val in (s.get("stringData") or {}).items()}
        files.update({k: base64.b64decode(val) for k, val in (s.get("data") or {}).items()})
        d = out + m["mountPath"]
        os.makedirs(d, exist_ok=True)
        for k, val in files.items():
            open(os.path.join(d, k), "wb").write(val)
        mounts.append(m["mountPath"].rstrip("/"))
for mp in sorted(mounts, key=len, reverse=True):
    text = text.replace(mp + "/", out + mp + "/")
cfg = yaml.safe_load(text)
def walk(x, path=""):
    if isinstance(x, dict):
        for k, v in x.items():
            p = f"{path}.{k}" if path else str(k)
            if str(k).endswith("_env"):
                sys.exit(f"check-dockerfile: FAIL: {p}: {v} - the image's config may only read secrets from files (the Secret mount)")
            if str(k).endswith("_file") and not os.path.isfile(str(v)):
                sys.exit(f"check-dockerfile: FAIL: {p}: {v} is provided by no mount of the jwtgate container")
            walk(v, p)
    elif isinstance(x, list):
        for i, v in enumerate(x):
            walk(v, f"{path}[{i}]")
walk(cfg)
cfg_out = out + "/etc/jwtgate/jwtgate.yaml"
os.makedirs(os.path.dirname(cfg_out), exist_ok=True)
if admin_listen:
    cfg.setdefault("admin", {})["listen"] = admin_listen
    open(cfg_out, "w").write(yaml.safe_dump(cfg, sort_keys=False))
else:
    open(cfg_out, "w").write(text)
print(cfg_out)
PY
}
bash scripts/gen-secrets.sh "$tmp/secrets" >/dev/null

# --- 3a. strip a copy as the build stage does; everything below runs it ---
if ! command -v "${strip_cmd[0]}" >/dev/null || ! command -v readelf >/dev/null; then apt_install binutils; fi
stripped=$tmp/stripped/$bin_name
mkdir -p "$tmp/stripped"
cp "$bin" "$stripped"
"${strip_cmd[@]}" "$stripped" || die "${strip_cmd[*]} failed on a copy of $bin"
size_built=$(stat -c %s "$bin")
size_stripped=$(stat -c %s "$stripped")
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
say "binary size: $(mib "$size_built") as built (release profile, line tables) -> $(mib "$size_stripped") after \`${strip_cmd[*]}\` (the image's)"
[ "$size_stripped" -lt "$size_built" ] || die "${strip_cmd[*]} did not shrink the binary"
# DWARF only: .debug_gdb_scripts is loaded at run time and strip keeps it.
dwarf=$(readelf -S --wide "$stripped" | grep -o '\.debug_[a-z_]*' | grep -vx '\.debug_gdb_scripts' | tr '\n' ' ' || true)
[ -z "$dwarf" ] || die "the stripped binary still has DWARF sections: $dwarf"
bin=$stripped

check_dir=$tmp/check
cfg_checked=$(layout "$check_dir" '')
"$bin" check -c "$cfg_checked" >"$tmp/check.out" 2>&1 || { cat "$tmp/check.out" >&2; die "jwtgate check rejects $cfg_src"; }
say "ok: jwtgate check -c $cfg_src (the base secretGenerator's files, made by scripts/gen-secrets.sh, at their mount paths)"

# --- 4. run as the image would: non-root, read-only, CMD's args ---
ro=$tmp/ro
cfg_run=$(layout "$ro" 127.0.0.1:0)
mkdir -p "$ro/usr/local/bin"
cp "$bin" "$ro/usr/local/bin/$bin_name"
args=()
for a in "${cmd_args[@]}"; do
  if [ "$a" = "$cfg_path" ]; then args+=("$cfg_run"); else args+=("$a"); fi
done
args+=(--listen 127.0.0.1:0)
chmod -R a-w "$ro"
chmod a+rx "$tmp"
if [ "$(id -u)" = 0 ]; then
  as=(setpriv --reuid="$run_uid" --regid="$run_gid" --clear-groups --no-new-privs)
  want_uid=$run_uid
else
  as=()
  want_uid=$(id -u)
fi
(cd "$ro" && exec "${as[@]}" "$ro/usr/local/bin/$bin_name" "${args[@]}") >"$tmp/run.out" 2>"$tmp/run.err" &
pid=$!
public= admin=
for _ in $(seq 200); do
  public=$(sed -n 's|^jwtgate listening on http://||p' "$tmp/run.out")
  admin=$(sed -n 's|^jwtgate admin listening on http://||p' "$tmp/run.out")
  [ -n "$public" ] && [ -n "$admin" ] && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$public" ] || [ -z "$admin" ]; then
  cat "$tmp/run.out" "$tmp/run.err" >&2
  die "jwtgate ${args[*]} did not print both listening lines"
fi
uid_seen=$(awk '/^Uid:/ {print $2}' "/proc/$pid/status")
[ "$uid_seen" = "$want_uid" ] || die "jwtgate runs as uid $uid_seen, expected $want_uid"
http_status() {
  python3 - "$1" <<'PY'
import sys, urllib.request, urllib.error
try:
    print(urllib.request.urlopen(sys.argv[1], timeout=5).status)
except urllib.error.HTTPError as e:
    print(e.code)
PY
}
s=$(http_status "http://$admin/healthz")
[ "$s" = 200 ] || die "GET http://$admin/healthz -> $s, expected 200"
s2=$(http_status "http://$public/")
[ "$s2" = 401 ] || die "GET http://$public/ without a token -> $s2, expected 401"
kill -TERM "$pid"
for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$pid" 2>/dev/null && die "jwtgate (pid $pid) still running 10 s after SIGTERM"
rc=0; wait "$pid" || rc=$?
pid=
[ "$rc" = 0 ] || { cat "$tmp/run.err" >&2; die "jwtgate exited $rc after SIGTERM"; }
say "ok: stripped $bin_name ${cmd_args[*]} --listen 127.0.0.1:0 as uid $uid_seen from a read-only dir: admin /healthz 200, public / 401 without token, clean exit on SIGTERM"
say "all checks passed"
