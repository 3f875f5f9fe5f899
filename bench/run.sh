#!/usr/bin/env bash
# Whole-proxy benchmark: what a request costs through jwtgate, next to the
# same request sent directly and through a plain nginx proxy, in one run,
# in alternating rounds. The candidate under load (nginx proxy, jwtgate,
# a baseline jwtgate) runs alone on its core; the upstream (nginx `return
# 200`), Redis and the load generator share the other one. For each run:
# req/s, p99, and the candidate's CPU per request (user and sys, from
# /proc/<pid>/stat over the run, divided by the requests wrk completed).
#
#   bench/run.sh                         # 3 rounds x 8 s per scenario (~3 min)
#   BASELINE=/tmp/old/jwtgate bench/run.sh   # adds the same config on another binary
#   SCENARIOS="nginx-proxy gate-HS256" ROUNDS=5 bench/run.sh
#
# Environment (all optional):
#   DURATION=8s WARMUP=2s ROUNDS=3   measured run length, warm-up, rounds (median reported)
#   CONNS=32 THREADS=1               wrk connections and threads
#   P99_CONNS=1                      a latency pass at this many connections ('' skips it)
#   CANDIDATE_CPU=1 OTHER_CPU=0      the candidate's core; upstream, Redis and wrk's core
#   SCENARIOS="..."                  subset, in order (default: all but baseline, which
#                                    is added when BASELINE is set)
#   JWTGATE=target/release/jwtgate   binary under test; BASELINE= a second one
#   SKIP_BUILD=0                     1 = use the binaries already built
#   RESULTS=bench/results/latest.md  markdown report ('' to skip)
#   KEEP_TMP=0                       1 = keep configs, logs and raw wrk output
#   PERF=                            a scenario to profile: after the rounds, one more
#                                    load run with `perf record -g` on its process
#   PERF_OUT=perf.data               where that profile goes (build with
#                                    RUSTFLAGS="-C force-frame-pointers=yes" for call stacks)
#   INSTRUCTIONS=                    N: instead of the load runs, count the user-space
#                                    instructions each candidate spends per request under
#                                    callgrind (N requests at 8 connections after 2000 of
#                                    warm-up, by h2load): repeatable whatever the host's
#                                    noise, so small changes can be compared. valgrind has
#                                    no SHA extensions: sha2 runs its portable code there,
#                                    so a jwtgate's SHA-256 counts far above its real cost.
#
# Scenarios: direct (wrk → upstream), nginx-proxy (the peer: one worker,
# access_log off, keepalive 256, HTTP/1.1 upstream, proxy_buffering off),
# bare-hyper (examples/bare_proxy.rs: the hyper floor, no auth; not in the
# default set),
# gate-HS256 and gate-ES256 (production-like: Redis store, admin listener so
# the metrics recorder runs, access log off), gate-memory (HS256, memory
# store, no admin), gate-access-log (gate-HS256 plus access_log: true),
# baseline (gate-HS256's config on $BASELINE), gate-distinct (gate-HS256
# with DISTINCT=10000 tokens, one in REVOKED_SHARE=100 revoked through the
# admin API, drawn at random per request by bench/distinct.lua; after the
# runs every token is sent once and each must get 401 if revoked, else 200),
# nginx-authreq (nginx-proxy plus `auth_request` to a jwtgate forward-auth
# listener with gate-HS256's config, copying X-User-Id from the verdict as
# the README's pattern does; both processes on the candidate's core, their
# CPU summed; not in the default set).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

DURATION=${DURATION:-8s}
WARMUP=${WARMUP:-2s}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-32}
THREADS=${THREADS:-1}
P99_CONNS=${P99_CONNS-1}
CANDIDATE_CPU=${CANDIDATE_CPU:-1}
OTHER_CPU=${OTHER_CPU:-0}
JWTGATE=${JWTGATE:-target/release/jwtgate}
BASELINE=${BASELINE:-}
TOKEN_BIN=${TOKEN_BIN:-target/release/examples/bench_token}
BARE_BIN=${BARE_BIN:-target/release/examples/bare_proxy}
SKIP_BUILD=${SKIP_BUILD:-0}
RESULTS=${RESULTS-bench/results/latest.md}
KEEP_TMP=${KEEP_TMP:-0}
DEFAULT_SCENARIOS="direct nginx-proxy gate-HS256 gate-distinct gate-ES256 gate-memory gate-access-log"
[[ -n $BASELINE ]] && DEFAULT_SCENARIOS="$DEFAULT_SCENARIOS baseline"
read -r -a SCENARIOS <<<"${SCENARIOS:-$DEFAULT_SCENARIOS}"

ISSUER=jwtgate-bench
AUDIENCE=bench-api
KID=k1
EC_PRIV=bench/keys/ec-p256.pem
EC_PUB=bench/keys/ec-p256.pub.pem
BENCH_PATH=/api/bench
CLK_TCK=$(getconf CLK_TCK)

log() { printf '[bench] %s\n' "$*" >&2; }
die() { printf '[bench] error: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- cleanup
TMP=$(mktemp -d "${TMPDIR:-/tmp}/jwtgate-bench.XXXXXX")
PIDS=() # only processes this script started
LOAD_PID=""
cleanup() {
    local rc=$? pid i
    trap - EXIT INT TERM
    [[ -n $LOAD_PID ]] && { kill "$LOAD_PID" 2>/dev/null || true; wait "$LOAD_PID" 2>/dev/null || true; }
    for pid in ${PIDS[@]+"${PIDS[@]}"}; do kill "$pid" 2>/dev/null || true; done
    for pid in ${PIDS[@]+"${PIDS[@]}"}; do
        for ((i = 0; i < 30; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if ((rc != 0)); then
        for i in "$TMP"/*.err; do
            [[ -s $i ]] && { printf '[bench] --- last lines of %s\n' "${i#"$TMP"/}" >&2; tail -n 15 "$i" >&2; }
        done
    fi
    if [[ $KEEP_TMP == 1 ]]; then log "temp dir kept: $TMP"; else rm -rf "$TMP"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- helpers
secs() { # a wrk duration in whole seconds
    case $1 in *ms) echo 1 ;; *s) echo "${1%s}" ;; *m) echo $((${1%m} * 60)) ;; *) echo "$1" ;; esac
}

# start NAME CPU CMD...: CMD pinned to CPU in the background (exec'd, so the
# PID is CMD's own); sets STARTED_PID. A candidate (CPU = CANDIDATE_CPU)
# runs under callgrind when INSTRUCTIONS is set.
start() {
    local name=$1 cpu=$2
    shift 2
    if [[ -n ${INSTRUCTIONS:-} && $cpu == "$CANDIDATE_CPU" ]]; then
        set -- valgrind --tool=callgrind --dump-instr=no --callgrind-out-file="$TMP/$name.cg" "$@"
    fi
    (exec taskset -c "$cpu" "$@") >"$TMP/$name.out" 2>"$TMP/$name.err" </dev/null &
    STARTED_PID=$!
    PIDS+=("$STARTED_PID")
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

status_of() { # URL [TOKEN]: the status of one GET (000 when unreachable)
    local args=(-s -o /dev/null -w '%{http_code}' --max-time 5)
    [[ -n ${2:-} ]] && args+=(-H "Authorization: Bearer $2")
    curl "${args[@]}" "$1" || true
}

wait_for() { # PID URL: until URL answers (any status)
    local i
    for ((i = 0; i < 100; i++)); do
        [[ $(status_of "$2") != 000 ]] && return 0
        kill -0 "$1" 2>/dev/null || die "process $1 exited before $2 answered"
        sleep 0.1
    done
    die "$2 did not answer within 10 s"
}

# The line "PREFIX listening on http://IP:PORT" in a started process's stdout.
listening_url() { # NAME PREFIX
    local i url
    for ((i = 0; i < 200; i++)); do
        url=$(grep -m1 -oE "^$2 listening on http://[0-9.]+:[0-9]+" "$TMP/$1.out" 2>/dev/null | grep -oE 'http://.*' || true)
        [[ -n $url ]] && { echo "$url"; return 0; }
        sleep 0.1
    done
    die "$1 did not print '$2 listening on'"
}

cpu_ticks() { # "PID [PID...]": utime stime, summed over the processes
    local pid u=0 s=0 a b
    for pid in $1; do
        read -r a b < <(awk '{ print $14, $15 }' "/proc/$pid/stat")
        u=$((u + a)); s=$((s + b))
    done
    echo "$u $s"
}

# ---------------------------------------------------------------- tools, build
for tool in wrk nginx redis-server taskset curl python3; do
    command -v "$tool" >/dev/null || die "$tool is required (apt-get install wrk nginx redis-server util-linux curl python3)"
done
(($(nproc) >= 2)) || die "needs two cores: the candidate alone on one"
if [[ -n ${INSTRUCTIONS:-} ]]; then
    for tool in valgrind callgrind_control h2load; do
        command -v "$tool" >/dev/null || die "INSTRUCTIONS needs $tool (apt-get install valgrind nghttp2-client)"
    done
    [[ " ${SCENARIOS[*]} " =~ " "(direct|gate-distinct|nginx-authreq)" " ]] &&
        die "INSTRUCTIONS: direct, gate-distinct and nginx-authreq are not counted; pick from nginx-proxy bare-hyper gate-* baseline"
fi
if [[ $SKIP_BUILD != 1 ]]; then
    log "building (release): jwtgate + example bench_token"
    cargo build --release --bin jwtgate --example bench_token --example bare_proxy >&2
fi
[[ -x $JWTGATE ]] || die "$JWTGATE not found"
[[ -x $TOKEN_BIN ]] || die "$TOKEN_BIN not found (cargo build --release --example bench_token)"
[[ -z $BASELINE || -x $BASELINE ]] || die "BASELINE=$BASELINE is not an executable"

# ---------------------------------------------------------------- upstream, redis
nginx_conf() { # DIR BODY: an nginx.conf whose http block holds BODY, one worker
    mkdir -p "$1"
    cat >"$1/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
pid $1/nginx.pid;
error_log $1/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $1/body;
    proxy_temp_path $1/proxy;
    fastcgi_temp_path $1/fastcgi;
    uwsgi_temp_path $1/uwsgi;
    scgi_temp_path $1/scgi;
    keepalive_requests 1000000;
    keepalive_timeout 120s;
$2
}
EOF
}

UP_PORT=$(free_port)
nginx_conf "$TMP/upstream" "    server { listen 127.0.0.1:$UP_PORT; default_type text/plain; location / { return 200 \"ok\\n\"; } }"
start upstream "$OTHER_CPU" nginx -p "$TMP/upstream/" -c "$TMP/upstream/nginx.conf" -e "$TMP/upstream/error.log"
UPSTREAM_URL="http://127.0.0.1:$UP_PORT"
wait_for "$STARTED_PID" "$UPSTREAM_URL/"

REDIS_PORT=$(free_port)
start redis "$OTHER_CPU" redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no
for ((i = 0; i < 100; i++)); do
    [[ $(redis-cli -p "$REDIS_PORT" ping 2>/dev/null) == PONG ]] && break
    sleep 0.1
done
[[ $(redis-cli -p "$REDIS_PORT" ping 2>/dev/null) == PONG ]] || die "redis did not start"

# ---------------------------------------------------------------- tokens
SECRET_FILE="$TMP/hs256.secret"
(umask 077 && head -c 48 /dev/urandom | base64 | tr -d '\n' >"$SECRET_FILE")
mint() {
    local key_args=(--secret-file "$SECRET_FILE")
    [[ $1 == ES256 ]] && key_args=(--key "$EC_PRIV")
    "$TOKEN_BIN" --alg "$1" "${key_args[@]}" --iss "$ISSUER" --aud "$AUDIENCE" --kid "$KID" --ttl-secs 3600
}
TOKEN_HS256=$(mint HS256)
DISTINCT=${DISTINCT:-10000}          # tokens in the distinct-token scenario
REVOKED_SHARE=${REVOKED_SHARE:-100}  # one in this many is revoked
TOKENS_FILE="$TMP/distinct-tokens.txt"
TOKEN_ES256=$(mint ES256)
export JWTGATE_ADMIN_TOKEN="bench-admin-token-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')"

# ---------------------------------------------------------------- candidates
gate_config() { # FILE ALG STORE(memory|redis) ADMIN(0|1) ACCESS_LOG(true|false) [FORWARD_AUTH(0|1)]
    local keyspec="secret_file: \"$SECRET_FILE\""
    [[ $2 == ES256 ]] && keyspec="pem_file: \"$ROOT/$EC_PUB\""
    {
        echo "listen: 127.0.0.1:0"
        echo "upstream: { url: \"$UPSTREAM_URL\" }"
        echo "jwt:"
        echo "  issuers:"
        echo "    - { issuer: $ISSUER, audiences: [$AUDIENCE], algorithms: [$2], keys: [{ kid: $KID, $keyspec }] }"
        if [[ $3 == redis ]]; then
            echo "revocation: { store: redis, redis: { url: \"redis://127.0.0.1:$REDIS_PORT/0\" } }"
        else
            echo "revocation: { store: memory }"
        fi
        [[ $4 == 1 ]] && echo "admin: { listen: 127.0.0.1:0, token_env: JWTGATE_ADMIN_TOKEN }"
        echo "access_log: $5"
        [[ ${6:-0} == 1 ]] && printf '%s\n' "forward_auth: { listen: 127.0.0.1:0, proxy: nginx }" "trusted_proxies: [127.0.0.1]"
        echo "routes:"
        echo "  - { match: { path: /healthz }, auth: none }"
        if [[ ${6:-0} == 1 ]]; then echo "  - { match: { path_prefix: /api }, forward_claims: { sub: X-User-Id } }"; fi
    } >"$1"
}

declare -A URL TOKEN PID LABEL
URL[direct]="$UPSTREAM_URL"; TOKEN[direct]=$TOKEN_HS256; PID[direct]=""
LABEL[direct]="direct to the upstream (no hop)"

start_candidate() { # NAME
    local name=$1 cfg="$TMP/$1.yaml" bin=$JWTGATE
    case $name in
        direct) return 0 ;;
        nginx-proxy)
            local port
            port=$(free_port)
            nginx_conf "$TMP/nginx-proxy" "    upstream app { server 127.0.0.1:$UP_PORT; keepalive 256; }
    server {
        listen 127.0.0.1:$port;
        location / {
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
            proxy_buffering off;
        }
    }"
            start nginx-proxy "$CANDIDATE_CPU" nginx -p "$TMP/nginx-proxy/" -c "$TMP/nginx-proxy/nginx.conf" \
                -e "$TMP/nginx-proxy/error.log"
            URL[$name]="http://127.0.0.1:$port"; TOKEN[$name]=$TOKEN_HS256; PID[$name]=$STARTED_PID
            LABEL[$name]="nginx plain proxy (no auth)"
            wait_for "$STARTED_PID" "${URL[$name]}/"
            return 0
            ;;
        nginx-authreq)
            local port fa
            gate_config "$cfg" HS256 redis 1 false 1
            start "$name-gate" "$CANDIDATE_CPU" "$bin" run -c "$cfg"
            local gate_pid=$STARTED_PID
            fa=$(listening_url "$name-gate" "jwtgate forward-auth")
            port=$(free_port)
            nginx_conf "$TMP/$name" "    upstream app { server 127.0.0.1:$UP_PORT; keepalive 256; }
    upstream jwtgate { server ${fa#http://}; keepalive 256; }
    server {
        listen 127.0.0.1:$port;
        location / {
            auth_request /_jwtgate;
            auth_request_set \$jwt_user \$upstream_http_x_user_id;
            proxy_set_header X-User-Id \$jwt_user;
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
            proxy_buffering off;
        }
        location = /_jwtgate {
            internal;
            proxy_pass http://jwtgate/auth;
            proxy_pass_request_body off;
            proxy_set_header Content-Length \"\";
            proxy_set_header X-Original-Method \$request_method;
            proxy_set_header X-Original-URI \$request_uri;
            proxy_set_header Host \$host;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
        }
    }"
            start "$name" "$CANDIDATE_CPU" nginx -p "$TMP/$name/" -c "$TMP/$name/nginx.conf" -e "$TMP/$name/error.log"
            URL[$name]="http://127.0.0.1:$port"; TOKEN[$name]=$TOKEN_HS256; PID[$name]="$STARTED_PID $gate_pid"
            LABEL[$name]="nginx + auth_request to jwtgate forward-auth (HS256, Redis, admin; CPU of both)"
            wait_for "$STARTED_PID" "${URL[$name]}/"
            [[ $(status_of "${URL[$name]}$BENCH_PATH") == 401 ]] || die "$name answered a request without a token with other than 401"
            return 0
            ;;
        bare-hyper)
            [[ -x $BARE_BIN ]] || die "$BARE_BIN not found (cargo build --release --example bare_proxy)"
            start "$name" "$CANDIDATE_CPU" "$BARE_BIN" 127.0.0.1:0 "${UPSTREAM_URL#http://}"
            URL[$name]=$(listening_url "$name" "bare proxy"); TOKEN[$name]=$TOKEN_HS256; PID[$name]=$STARTED_PID
            LABEL[$name]="bare hyper proxy (no auth; examples/bare_proxy.rs)"
            return 0
            ;;
        gate-HS256) gate_config "$cfg" HS256 redis 1 false; LABEL[$name]="jwtgate HS256, Redis, admin" ;;
        gate-distinct)
            gate_config "$cfg" HS256 redis 1 false
            LABEL[$name]="jwtgate HS256, Redis, admin, $DISTINCT distinct tokens (1/$REVOKED_SHARE revoked), random order"
            ;;
        gate-ES256) gate_config "$cfg" ES256 redis 1 false; LABEL[$name]="jwtgate ES256, Redis, admin" ;;
        gate-memory) gate_config "$cfg" HS256 memory 0 false; LABEL[$name]="jwtgate HS256, memory store, no admin" ;;
        gate-access-log) gate_config "$cfg" HS256 redis 1 true; LABEL[$name]="jwtgate HS256, Redis, admin, access log" ;;
        baseline)
            gate_config "$cfg" HS256 redis 1 false
            bin=$BASELINE
            LABEL[$name]="baseline binary, gate-HS256's config"
            ;;
        *) die "unknown scenario $name" ;;
    esac
    start "$name" "$CANDIDATE_CPU" "$bin" run -c "$cfg"
    PID[$name]=$STARTED_PID
    URL[$name]=$(listening_url "$name" jwtgate)
    TOKEN[$name]=$TOKEN_HS256
    [[ $name == gate-ES256 ]] && TOKEN[$name]=$TOKEN_ES256
    [[ $name == gate-distinct ]] && revoke_share "$name"
    # Sanity: a gate that forwarded everything would flatter the numbers.
    [[ $(status_of "${URL[$name]}$BENCH_PATH") == 401 ]] || die "$name answered a request without a token with other than 401"
    return 0
}

# revoke_share NAME: mints $DISTINCT tokens, revokes every $REVOKED_SHARE-th
# through NAME's admin API (so Redis and the other replicas' channel have
# them), and keeps both lists for the exactness check.
revoke_share() {
    local admin i=0 token
    admin=$(grep -m1 -oE "admin listening on http://[0-9.]+:[0-9]+" "$TMP/$1.out" | grep -oE 'http://.*')
    "$TOKEN_BIN" --alg HS256 --secret-file "$SECRET_FILE" --iss "$ISSUER" --aud "$AUDIENCE" --kid "$KID" \
        --ttl-secs 3600 --count "$DISTINCT" >"$TOKENS_FILE"
    : >"$TMP/revoked.txt"
    while read -r token; do
        if ((++i % REVOKED_SHARE == 0)); then
            echo "$token" >>"$TMP/revoked.txt"
            curl -sf -o /dev/null -H "Authorization: Bearer $JWTGATE_ADMIN_TOKEN" \
                -d "{\"token\": \"$token\"}" "$admin/revocations" || die "admin revoke failed"
        fi
    done <"$TOKENS_FILE"
    log "$1: $DISTINCT tokens, $(wc -l <"$TMP/revoked.txt") revoked"
}

# exact NAME: every token once, in order: each revoked one must get 401,
# every other one 200 (nothing refused or let through by mistake).
exact() {
    python3 - "${URL[$1]}$BENCH_PATH" "$TOKENS_FILE" "$TMP/revoked.txt" <<'PY'
import http.client, sys, urllib.parse
url, tokens, revoked = sys.argv[1], open(sys.argv[2]).read().split(), set(open(sys.argv[3]).read().split())
u = urllib.parse.urlsplit(url)
conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
wrong = 0
for t in tokens:
    conn.request("GET", u.path, headers={"Authorization": "Bearer " + t})
    r = conn.getresponse(); r.read()
    want = 401 if t in revoked else 200
    wrong += r.status != want
print(f"{len(tokens)} {len(revoked)} {wrong}")
PY
}

rss_kib() { # "PID [PID...]": resident KiB, summed
    local pid total=0 kib
    for pid in $1; do
        kib=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status" 2>/dev/null) || { echo -; return; }
        total=$((total + kib))
    done
    echo "$total"
}

declare -A IDLE_RSS
for s in "${SCENARIOS[@]}"; do start_candidate "$s"; done
for s in "${SCENARIOS[@]}"; do
    code=$(status_of "${URL[$s]}$BENCH_PATH" "${TOKEN[$s]}")
    [[ $code == 200 ]] || die "$s: GET with its token answered $code, want 200"
    # Idle: started, keys loaded, one request served.
    [[ -n ${PID[$s]} ]] && IDLE_RSS[$s]=$(rss_kib "${PID[$s]}")
done

# ---------------------------------------------------------------- instructions
# count SCENARIO: h2load's warm-up, then N requests between a zeroing and a
# dump of the candidate's callgrind counters; prints instructions per request.
count() {
    local s=$1 pid=${PID[$1]} dump
    local load=(h2load --h1 -c 8 -H "authorization: Bearer ${TOKEN[$s]}")
    taskset -c "$OTHER_CPU" "${load[@]}" -n 2000 "${URL[$s]}$BENCH_PATH" >"$TMP/count-warm-$s.txt" 2>&1 ||
        die "h2load warm-up against $s failed"
    callgrind_control -z "$pid" >/dev/null
    taskset -c "$OTHER_CPU" "${load[@]}" -n "$INSTRUCTIONS" "${URL[$s]}$BENCH_PATH" >"$TMP/count-$s.txt" 2>&1 ||
        die "h2load against $s failed"
    grep -q "^status codes: $INSTRUCTIONS 2xx" "$TMP/count-$s.txt" || die "$s: not every counted request got a 2xx"
    callgrind_control -d "$pid" >/dev/null
    dump=$(ls -t "$TMP/$s.cg".* | head -n 1)
    cp "$dump" "$TMP/$s.dump"
    local sha
    sha=$(python3 "$ROOT/scripts/callgrind-cost.py" "$dump" "$INSTRUCTIONS" self 400 |
        awk '$2 == "sha2::sha256::soft::compress" { v = $1 } END { print v + 0 }')
    awk -v n="$INSTRUCTIONS" -v sha="$sha" '/^summary:/ { printf "%.0f %d\n", $2 / n, sha }' "$dump"
}

if [[ -n ${INSTRUCTIONS:-} ]]; then
    declare -A IR SHA
    for s in "${SCENARIOS[@]}"; do
        read -r IR[$s] SHA[$s] < <(count "$s")
        log "$s: ${IR[$s]} instructions per request (${SHA[$s]} in sha2's portable SHA-256)"
    done
    REPORT=$(
        echo "# jwtgate instructions per request (callgrind)"
        echo
        echo "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), commit $(git rev-parse -q --verify --short HEAD 2>/dev/null || echo none)"
        echo "- binary: $JWTGATE${BASELINE:+; baseline: $BASELINE}"
        echo "- $INSTRUCTIONS requests at 8 connections (h2load, HTTP/1.1 keep-alive) after 2000 of warm-up; user-space instructions of the candidate only"
        echo "- valgrind has no SHA extensions: sha2 runs its portable code there (about 17k instructions per SHA-256 of a bench token), far above its cost on a CPU with them"
        echo
        echo "| scenario | instructions per request | of which sha2's portable SHA-256 | the rest | the rest × nginx proxy |"
        echo "|---|---:|---:|---:|---:|"
        for s in "${SCENARIOS[@]}"; do
            rest=$((IR[$s] - SHA[$s]))
            echo "| ${LABEL[$s]} | ${IR[$s]} | ${SHA[$s]} | $rest | $(awk -v a="$rest" -v b="${IR[nginx-proxy]:-}" 'BEGIN { if (b == "") print "-"; else printf "%.2f", a / b }') |"
        done
        for s in "${SCENARIOS[@]}"; do
            echo
            echo "<details><summary>$s: largest self costs per request</summary>"
            echo
            echo '```'
            python3 "$ROOT/scripts/callgrind-cost.py" "$TMP/$s.dump" "$INSTRUCTIONS" self 25
            echo '```'
            echo
            echo "</details>"
        done
    )
    echo "$REPORT"
    [[ -n $RESULTS ]] && { mkdir -p "$(dirname "$RESULTS")"; echo "$REPORT" >"$RESULTS"; log "wrote $RESULTS"; }
    exit 0
fi

# ---------------------------------------------------------------- load
# run SCENARIO CONNS DURATION OUT: one wrk run (on OTHER_CPU); prints
# "req/s p99_ms requests errors user_us_per_req sys_us_per_req".
run() {
    local s=$1 conns=$2 dur=$3 out=$4 before after
    local pid=${PID[$s]} each_before=() each_after=() p
    [[ -n $pid ]] && before=$(cpu_ticks "$pid")
    # Several processes (nginx-authreq): each one's ticks too, for the split.
    [[ $pid == *" "* ]] && for p in $pid; do each_before+=("$(cpu_ticks "$p")"); done
    local auth=(-H "Authorization: Bearer ${TOKEN[$s]}")
    [[ $s == gate-distinct ]] && auth=(-s "$ROOT/bench/distinct.lua")
    (TOKENS_FILE=$TOKENS_FILE exec taskset -c "$OTHER_CPU" timeout -k 5 $(($(secs "$dur") + 30)) wrk -t"$THREADS" \
        -c"$conns" -d"$dur" --timeout 5s --latency "${auth[@]}" "${URL[$s]}$BENCH_PATH") >"$out" 2>&1 &
    LOAD_PID=$!
    wait "$LOAD_PID" || die "wrk failed against $s: $(tail -n 3 "$out" | tr '\n' ' ')"
    LOAD_PID=""
    [[ -n $pid ]] && after=$(cpu_ticks "$pid")
    if [[ $pid == *" "* ]]; then
        for p in $pid; do each_after+=("$(cpu_ticks "$p")"); done
        local k=0 n
        n=$(awk '/ requests in / { print $1 }' "$out")
        for p in $pid; do
            awk -v b="${each_before[k]}" -v a="${each_after[k]}" -v tck="$CLK_TCK" -v n="$n" -v s="$s" -v k="$k" -v f="$out" \
                'BEGIN { split(b, x, " "); split(a, y, " "); printf "%s\t%s\t%d\t%.2f\n", s, f, k, ((y[1] - x[1]) + (y[2] - x[2])) * 1e6 / tck / n }' \
                >>"$TMP/split.tsv"
            k=$((k + 1))
        done
    fi
    awk -v before="${before:-}" -v after="${after:-}" -v tck="$CLK_TCK" '
        function ms(v) {
            if (v ~ /us$/) return substr(v, 1, length(v) - 2) / 1000
            if (v ~ /ms$/) return substr(v, 1, length(v) - 2) + 0
            if (v ~ /s$/) return substr(v, 1, length(v) - 1) * 1000
            return v + 0
        }
        /Latency Distribution/ { lat = 1 }
        $1 == "99%" && lat { p99 = ms($2) }
        / requests in / { n = $1 }
        /^Requests\/sec:/ { rps = $2 }
        /Non-2xx or 3xx responses:/ { err += $NF }
        /Socket errors:/ { gsub(/,/, ""); err += $4 + $6 + $8 + $10 }
        END {
            if (rps == "" || n == 0) exit 1
            if (before == "") { u = "-"; s = "-" } else {
                split(before, b, " "); split(after, a, " ")
                u = sprintf("%.2f", (a[1] - b[1]) * 1e6 / tck / n)
                s = sprintf("%.2f", (a[2] - b[2]) * 1e6 / tck / n)
            }
            printf "%.0f %.3f %d %d %s %s\n", rps, p99, n, err, u, s
        }' "$out" || die "could not parse wrk output $out"
}

RAW="$TMP/raw.tsv" # scenario pass round rps p99 requests errors user sys
: >"$RAW"
log "candidate on core $CANDIDATE_CPU; upstream, Redis and wrk on core $OTHER_CPU"
for s in "${SCENARIOS[@]}"; do run "$s" "$CONNS" "$WARMUP" "$TMP/warmup-$s.txt" >/dev/null; done
passes=("load:$CONNS")
[[ -n $P99_CONNS ]] && passes+=("latency:$P99_CONNS")
for pass in "${passes[@]}"; do
    for ((r = 1; r <= ROUNDS; r++)); do
        # Odd rounds in order, even rounds reversed (A B B A ...): no
        # scenario always runs right after the same neighbour.
        order=("${SCENARIOS[@]}")
        ((r % 2 == 0)) && for ((k = ${#SCENARIOS[@]} - 1, j = 0; k >= 0; k--, j++)); do order[j]=${SCENARIOS[k]}; done
        for s in "${order[@]}"; do
            read -r rps p99 n err u sy < <(run "$s" "${pass#*:}" "$DURATION" "$TMP/${pass%%:*}-$r-$s.txt")
            log "${pass%%:*} round $r $s: $rps req/s, p99 ${p99} ms, $n requests, $err errors, user $u sys $sy µs/req"
            printf '%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n' "$s" "${pass%%:*}" "$r" "$rps" "$p99" "$n" "$err" "$u" "$sy" >>"$RAW"
        done
    done
done

if [[ -n ${PERF:-} ]]; then
    [[ -n ${PID[$PERF]:-} ]] || die "PERF=$PERF: not a running scenario of this run"
    command -v perf >/dev/null || die "PERF needs perf (apt-get install linux-perf)"
    perf record -q -g -o "${PERF_OUT:-perf.data}" -p "${PID[$PERF]// /,}" -- sleep "$(secs "$DURATION")" \
        >"$TMP/perf.out" 2>"$TMP/perf.err" &
    perf_pid=$!
    run "$PERF" "$CONNS" "$DURATION" "$TMP/perf-$PERF.txt" >/dev/null
    wait "$perf_pid" || die "perf record failed: $(tail -n 3 "$TMP/perf.err" | tr '\n' ' ')"
    log "profile of $PERF under load: ${PERF_OUT:-perf.data}"
fi

EXACT=""
[[ " ${SCENARIOS[*]} " == *" gate-distinct "* ]] && EXACT=$(exact gate-distinct)

# ---------------------------------------------------------------- report
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
col() { # SCENARIO PASS COLUMN: the median of that column over the rounds
    awk -F'\t' -v s="$1" -v p="$2" -v c="$3" '$1 == s && $2 == p && $c != "-" { print $c }' "$RAW" | median
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b == 0) print "-"; else printf "%.2f", a / b }'; }
# paired SCENARIO REFERENCE COLUMN: the median over rounds of SCENARIO's
# value over REFERENCE's in the same round (alternating rounds pair them, so
# drift between rounds cancels out of the ratio).
paired() {
    awk -F'\t' -v s="$1" -v r="$2" -v c="$3" '
        $2 == "load" && $1 == s && $c != "-" { a[$3] = $c }
        $2 == "load" && $1 == r && $c != "-" { b[$3] = $c }
        END { for (k in a) if ((k in b) && b[k] > 0) printf "%.4f\n", a[k] / b[k] }' "$RAW" | median |
        awk '{ if ($1 == "-") print "-"; else printf "%.2f", $1 }'
}
cpu_total() { # the raw table with a column 10: user+sys per request
    awk -F'\t' -v OFS='\t' '{ t = ($8 == "-") ? "-" : $8 + $9; print $0, t }' "$RAW"
}

table() {
    local s rps p99 p99one u sy total errs base_rps=""
    cpu_total >"$TMP/raw-total.tsv"
    [[ " ${SCENARIOS[*]} " == *" baseline "* ]] && base_rps=$(col baseline load 4)
    echo "| scenario | req/s | × nginx proxy | × baseline | p99 ms @$CONNS | p99 ms @${P99_CONNS:--} | user µs/req | sys µs/req | total µs/req | × nginx CPU | × baseline CPU | errors |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    for s in "${SCENARIOS[@]}"; do
        rps=$(col "$s" load 4); p99=$(col "$s" load 5); u=$(col "$s" load 8); sy=$(col "$s" load 9)
        p99one=$([[ -n $P99_CONNS ]] && col "$s" latency 5 || echo -)
        total=$(awk -v u="$u" -v s="$sy" 'BEGIN { if (u == "-") print "-"; else printf "%.2f", u + s }')
        errs=$(awk -F'\t' -v s="$s" '$1 == s { e += $7 } END { print e + 0 }' "$RAW")
        local vs_base="-" vs_base_cpu="-"
        if [[ -n $base_rps ]]; then
            vs_base=$(paired "$s" baseline 4)
            vs_base_cpu=$(RAW="$TMP/raw-total.tsv" paired "$s" baseline 10)
        fi
        echo "| ${LABEL[$s]} | $rps | $(paired "$s" nginx-proxy 4) | $vs_base | $p99 | $p99one | $u | $sy | $total | $(RAW="$TMP/raw-total.tsv" paired "$s" nginx-proxy 10) | $vs_base_cpu | $errs |"
    done
}

COMMIT=$(git rev-parse -q --verify --short HEAD 2>/dev/null || echo none)
[[ -n $(git status --porcelain 2>/dev/null | head -n 1) ]] && COMMIT="$COMMIT, working tree modified"
REPORT=$(
    echo "# jwtgate whole-proxy benchmark"
    echo
    echo "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), commit $COMMIT, nproc $(nproc) ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo))"
    echo "- binary: $JWTGATE${BASELINE:+; baseline: $BASELINE}"
    echo "- cores: candidate alone on $CANDIDATE_CPU; nginx upstream (return 200), Redis and wrk on $OTHER_CPU"
    echo "- load: $(wrk -v 2>&1 | awk 'NR == 1 { print $1, $2 }'), $THREADS thread(s), $CONNS connections (latency pass: ${P99_CONNS:-none}), keep-alive, one repeated token"
    echo "- runs: warm-up $WARMUP each, then $ROUNDS alternating round(s) of (${SCENARIOS[*]}) x $DURATION per pass; medians"
    echo "- CPU: the candidate's utime/stime from /proc/<pid>/stat over each run, divided by the requests wrk completed"
    echo "- columns: medians over the rounds; the × columns are medians of the per-round ratios (same round, so drift cancels)"
    echo
    table
    echo
    for s in "${SCENARIOS[@]}"; do
        [[ -n ${IDLE_RSS[$s]:-} ]] && echo "- RSS of ${LABEL[$s]}: idle $(awk -v k="${IDLE_RSS[$s]}" 'BEGIN { printf "%.1f", k / 1024 }') MiB, after the runs $(awk -v k="$(rss_kib "${PID[$s]}")" 'BEGIN { printf "%.1f", k / 1024 }') MiB"
    done
    if [[ " ${SCENARIOS[*]} " == *" nginx-authreq "* && -s $TMP/split.tsv ]]; then
        split_of() { awk -F'\t' -v k="$1" '$1 == "nginx-authreq" && $2 ~ /\/load-/ && $3 == k { print $4 }' "$TMP/split.tsv" | median; }
        echo "- nginx-authreq CPU split (medians of the load runs, user+sys µs/req): nginx $(split_of 0), jwtgate forward-auth $(split_of 1)"
    fi
    if [[ -n $EXACT ]]; then
        read -r total revoked wrong <<<"$EXACT"
        echo "- distinct tokens: $(paired gate-distinct gate-HS256 4)x the repeated token's req/s (paired rounds; needs gate-HS256 in the run); errors column = the revoked tokens' 401s"
        echo "- exactness after the runs: $total tokens sent once each, $revoked revoked: $wrong answered otherwise than 401 for revoked and 200 for the rest"
    fi
    echo
    echo "<details><summary>per-run results</summary>"
    echo
    echo "| scenario | pass | round | req/s | p99 ms | requests | errors | user µs/req | sys µs/req |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|---:|"
    awk -F'\t' '{ printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7, $8, $9 }' "$RAW"
    echo
    echo "</details>"
)
echo
echo "$REPORT"
if [[ -n $RESULTS ]]; then
    mkdir -p "$(dirname "$RESULTS")"
    echo "$REPORT" >"$RESULTS"
    log "wrote $RESULTS"
fi
