#!/usr/bin/env bash
# Whole-proxy load benchmark for jwtgate: the same load generator, in the same
# run, against the upstream directly and through jwtgate (HS256 and ES256),
# alternating so drift (thermal, noisy neighbours) hits every scenario alike.
#
#   bench/run.sh                      # defaults: 10s per run, 2 rounds (~1.5 min)
#   DURATION=5s ROUNDS=3 bench/run.sh
#
# Environment (all optional):
#   DURATION=10s   length of each measured run (wrk/oha syntax: 5s, 1m)
#   WARMUP=2s      warm-up run per scenario before the measured rounds
#   ROUNDS=2       measured rounds; each round is direct, gate HS256, gate ES256
#   CONNS=64       concurrent connections (keep-alive)
#   THREADS=1      load-generator threads (wrk -t)
#   LOADGEN=auto   wrk | oha | auto (wrk if installed, else oha)
#   UPSTREAM=auto  jwtgate | nginx | auto (`jwtgate upstream`, else nginx)
#   LOAD_CPU=0 SERVER_CPU=1   cores for the load generator / upstream + jwtgate
#   PIN=auto       1 = always pin with taskset, 0 = never, auto = if >= 2 cores
#   SKIP_BUILD=0   1 = use the binaries already in target/release
#   JWTGATE=target/release/jwtgate   binary under test
#   RESULTS=bench/results/latest.md  markdown report ('' to skip)
#   KEEP_TMP=0     1 = keep the temp dir (configs, logs, raw load-generator output)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
ROUNDS=${ROUNDS:-2}
CONNS=${CONNS:-64}
THREADS=${THREADS:-1}
LOADGEN=${LOADGEN:-auto}
UPSTREAM=${UPSTREAM:-auto}
LOAD_CPU=${LOAD_CPU:-0}
SERVER_CPU=${SERVER_CPU:-1}
PIN=${PIN:-auto}
SKIP_BUILD=${SKIP_BUILD:-0}
JWTGATE=${JWTGATE:-target/release/jwtgate}
TOKEN_BIN=${TOKEN_BIN:-target/release/examples/bench_token}
RESULTS=${RESULTS-bench/results/latest.md}
KEEP_TMP=${KEEP_TMP:-0}

ISSUER=jwtgate-bench
AUDIENCE=bench-api
KID=k1
EC_PRIV=bench/keys/ec-p256.pem
EC_PUB=bench/keys/ec-p256.pub.pem
BENCH_PATH=/api/bench

log() { printf '[bench] %s\n' "$*" >&2; }
die() { printf '[bench] error: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- cleanup
TMP=$(mktemp -d "${TMPDIR:-/tmp}/jwtgate-bench.XXXXXX")
PIDS=()      # only processes this script started
LOAD_PID=""  # the load generator currently running, if any
LOGS=()      # their log files, shown when the script fails

cleanup() {
    local rc=$? pid i
    trap - EXIT INT TERM
    if [[ -n $LOAD_PID ]]; then
        kill "$LOAD_PID" 2>/dev/null || true
        wait "$LOAD_PID" 2>/dev/null || true
    fi
    for pid in ${PIDS[@]+"${PIDS[@]}"}; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in ${PIDS[@]+"${PIDS[@]}"}; do
        for ((i = 0; i < 30; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            kill -9 "$pid" 2>/dev/null || true
        fi
        wait "$pid" 2>/dev/null || true
    done
    if ((rc != 0)); then
        for i in ${LOGS[@]+"${LOGS[@]}"}; do
            if [[ -s $i ]]; then
                printf '[bench] --- last lines of %s\n' "${i#"$TMP"/}" >&2
                tail -n 20 "$i" >&2 || true
            fi
        done
    fi
    if [[ $KEEP_TMP == 1 ]]; then
        log "temp dir kept: $TMP"
    else
        rm -rf "$TMP"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- helpers
# Seconds in a wrk/oha duration ("10s", "1m", "500ms" rounds up, bare number = s).
duration_secs() {
    local d=$1
    case $d in
        *ms) echo $(((${d%ms} + 999) / 1000)) ;;
        *s) echo "${d%s}" ;;
        *m) echo $((${d%m} * 60)) ;;
        *h) echo $((${d%h} * 3600)) ;;
        *) echo "$d" ;;
    esac
}

case $PIN in
    auto) if (($(nproc) >= 2)) && command -v taskset >/dev/null; then PIN=1; else PIN=0; fi ;;
    0 | 1) ;;
    *) die "PIN must be 0, 1 or auto" ;;
esac
if [[ $PIN == 1 ]] && ! command -v taskset >/dev/null; then die "PIN=1 but taskset is not installed"; fi
((PIN == 1)) || log "warning: not pinning (nproc=$(nproc)); load generator and servers share cores"

# pin CPU CMD...: run CMD on one core (exec'd, so $! of `pin ... &` is CMD's PID).
pin() {
    local cpu=$1
    shift
    if [[ $PIN == 1 ]]; then exec taskset -c "$cpu" "$@"; else exec "$@"; fi
}

# start NAME CPU CMD...: start CMD pinned, in the background; sets STARTED_PID
# and STARTED_OUT (its stdout file).
start() {
    local name=$1 cpu=$2
    shift 2
    STARTED_OUT="$TMP/$name.out"
    (pin "$cpu" "$@") >"$STARTED_OUT" 2>"$TMP/$name.err" </dev/null &
    STARTED_PID=$!
    PIDS+=("$STARTED_PID")
    LOGS+=("$STARTED_OUT" "$TMP/$name.err")
}

# wait_for_url PID FILE PREFIX: wait for "PREFIX listening on http://IP:PORT"
# in FILE and print the URL.
wait_for_url() {
    local pid=$1 file=$2 prefix=$3 url deadline=$((SECONDS + 20))
    while ((SECONDS < deadline)); do
        url=$(grep -m1 -oE "$prefix listening on http://[0-9.]+:[0-9]+" "$file" 2>/dev/null |
            grep -oE 'http://[0-9.]+:[0-9]+' || true)
        if [[ -n $url ]]; then
            printf '%s\n' "$url"
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || die "'$prefix' exited before it was listening"
        sleep 0.1
    done
    die "'$prefix' did not print its listening line within 20s"
}

# http_status URL [TOKEN]: the status code of one GET (000 when unreachable).
http_status() {
    local args=(-s -o /dev/null -w '%{http_code}' --max-time 5)
    if [[ -n ${2:-} ]]; then args+=(-H "Authorization: Bearer $2"); fi
    curl "${args[@]}" "$1" || true
}

# ---------------------------------------------------------------- tools
command -v curl >/dev/null || die "curl is required (sanity checks)"
if [[ $LOADGEN == auto ]]; then
    if command -v wrk >/dev/null; then LOADGEN=wrk
    elif command -v oha >/dev/null; then LOADGEN=oha
    else die "no load generator: install wrk (apt-get install wrk) or oha"; fi
fi
case $LOADGEN in
    wrk | oha) command -v "$LOADGEN" >/dev/null || die "LOADGEN=$LOADGEN is not installed" ;;
    *) die "LOADGEN must be wrk, oha or auto" ;;
esac
[[ -f $EC_PRIV && -f $EC_PUB ]] || die "missing $EC_PRIV / $EC_PUB"

# ---------------------------------------------------------------- build
if [[ $SKIP_BUILD != 1 ]]; then
    log "building (release): jwtgate + example bench_token"
    cargo build --release --bin jwtgate --example bench_token >&2
fi
[[ -x $JWTGATE ]] || die "$JWTGATE not found (build it, or set JWTGATE=)"
[[ -x $TOKEN_BIN ]] || die "$TOKEN_BIN not found (cargo build --release --example bench_token)"

# ---------------------------------------------------------------- upstream
start_nginx_upstream() {
    command -v nginx >/dev/null || die "nginx is not installed"
    local dir="$TMP/nginx" port try
    mkdir -p "$dir"
    for ((try = 0; try < 10; try++)); do
        port=$((20000 + RANDOM % 30000))
        cat >"$dir/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $dir/body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
    keepalive_requests 1000000;
    keepalive_timeout 120s;
    server {
        listen 127.0.0.1:$port;
        default_type text/plain;
        location / { return 200 "ok\n"; }
    }
}
EOF
        start nginx-upstream "$SERVER_CPU" nginx -p "$dir/" -c "$dir/nginx.conf" -e "$dir/error.log"
        UPSTREAM_PID=$STARTED_PID
        local i
        for ((i = 0; i < 30; i++)); do
            if [[ $(http_status "http://127.0.0.1:$port/") == 200 ]]; then
                UPSTREAM_URL="http://127.0.0.1:$port"
                return 0
            fi
            kill -0 "$UPSTREAM_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill "$UPSTREAM_PID" 2>/dev/null || true
        wait "$UPSTREAM_PID" 2>/dev/null || true
    done
    die "nginx upstream did not start (see $dir/error.log)"
}

if [[ $UPSTREAM == auto ]]; then
    if "$JWTGATE" upstream --help >/dev/null 2>&1; then UPSTREAM=jwtgate
    elif command -v nginx >/dev/null; then
        log "'jwtgate upstream' is not available; using nginx as the upstream"
        UPSTREAM=nginx
    else die "'jwtgate upstream' is not available and nginx is not installed"; fi
fi
case $UPSTREAM in
    jwtgate)
        start upstream "$SERVER_CPU" "$JWTGATE" upstream --listen 127.0.0.1:0
        UPSTREAM_URL=$(wait_for_url "$STARTED_PID" "$STARTED_OUT" "jwtgate upstream")
        UPSTREAM_DESC="jwtgate upstream (built-in fixed 200)"
        ;;
    nginx)
        start_nginx_upstream
        UPSTREAM_DESC="nginx $(nginx -v 2>&1 | sed 's|.*nginx/||') (return 200)"
        ;;
    *) die "UPSTREAM must be jwtgate, nginx or auto" ;;
esac
log "upstream: $UPSTREAM_DESC at $UPSTREAM_URL"

# ---------------------------------------------------------------- keys, tokens
SECRET_FILE="$TMP/hs256.secret"
(umask 077 && head -c 48 /dev/urandom | base64 | tr -d '\n' >"$SECRET_FILE")

mint() { # ALG: print a token
    local key_args
    case $1 in
        HS256) key_args=(--secret-file "$SECRET_FILE") ;;
        ES256) key_args=(--key "$EC_PRIV") ;;
    esac
    "$TOKEN_BIN" --alg "$1" "${key_args[@]}" --iss "$ISSUER" --aud "$AUDIENCE" \
        --kid "$KID" --ttl-secs 3600
}
TOKEN_HS256=$(mint HS256)
TOKEN_ES256=$(mint ES256)

# ---------------------------------------------------------------- gates
start_gate() { # ALG KEYSPEC: start jwtgate for one algorithm; sets GATE_URL
    local alg=$1 keyspec=$2 cfg="$TMP/jwtgate-$1.yaml"
    cat >"$cfg" <<EOF
# jwtgate benchmark config ($alg), written by bench/run.sh
listen: 127.0.0.1:0
upstream:
  url: $UPSTREAM_URL
jwt:
  issuers:
    - issuer: $ISSUER
      audiences: [$AUDIENCE]
      algorithms: [$alg]
      keys:
        - { kid: $KID, $keyspec }
revocation:
  store: memory
routes:
  - match: { path: /healthz }
    auth: none
EOF
    start "jwtgate-$alg" "$SERVER_CPU" "$JWTGATE" run -c "$cfg"
    GATE_URL=$(wait_for_url "$STARTED_PID" "$STARTED_OUT" "jwtgate")
    log "jwtgate $alg at $GATE_URL"
}
start_gate HS256 "secret_file: \"$SECRET_FILE\""
GATE_HS256=$GATE_URL
start_gate ES256 "pem_file: \"$ROOT/$EC_PUB\""
GATE_ES256=$GATE_URL

# ---------------------------------------------------------------- scenarios
# name | url | token
SCEN_NAMES=("direct" "gate-HS256" "gate-ES256")
SCEN_LABELS=("direct to upstream" "jwtgate HS256, cached token" "jwtgate ES256, cached token")
SCEN_URLS=("$UPSTREAM_URL$BENCH_PATH" "$GATE_HS256$BENCH_PATH" "$GATE_ES256$BENCH_PATH")
SCEN_TOKENS=("$TOKEN_HS256" "$TOKEN_HS256" "$TOKEN_ES256")

# The reference hop: nginx as a plain reverse proxy (no auth, upstream
# keep-alive), pinned like jwtgate, when nginx is installed (NGINX_PROXY=0
# skips it). jwtgate / nginx is the cost of checking tokens and revocation
# relative to the cost of any proxy hop on this machine.
start_nginx_proxy() {
    local dir="$TMP/nginx-proxy" port attempt i
    mkdir -p "$dir"
    for attempt in 1 2 3; do
        port=$((20000 + RANDOM % 30000))
        cat >"$dir/nginx.conf" <<NGX
worker_processes 1;
daemon off;
pid $dir/nginx.pid;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $dir/body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
    keepalive_requests 1000000;
    upstream app { server ${UPSTREAM_URL#http://}; keepalive 128; }
    server {
        listen 127.0.0.1:$port;
        location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; }
    }
}
NGX
        start "nginx-proxy-$attempt" "$SERVER_CPU" nginx -p "$dir/" -c "$dir/nginx.conf" -e "$dir/error.log"
        for ((i = 0; i < 30; i++)); do
            if [[ $(http_status "http://127.0.0.1:$port$BENCH_PATH") == 200 ]]; then
                NGINX_PROXY_URL="http://127.0.0.1:$port"
                return 0
            fi
            kill -0 "$STARTED_PID" 2>/dev/null || break
            sleep 0.1
        done
    done
    log "nginx proxy did not start; no reference row"
}
if [[ ${NGINX_PROXY:-auto} != 0 ]] && command -v nginx >/dev/null; then
    start_nginx_proxy
    if [[ -n ${NGINX_PROXY_URL:-} ]]; then
        SCEN_NAMES+=("nginx-proxy")
        SCEN_LABELS+=("nginx plain proxy (no auth)")
        SCEN_URLS+=("$NGINX_PROXY_URL$BENCH_PATH")
        SCEN_TOKENS+=("$TOKEN_HS256")
    fi
fi

# Sanity: every scenario answers 200 with its token, and the gates answer 401
# without one (otherwise the numbers would not measure verification at all).
for i in "${!SCEN_NAMES[@]}"; do
    code=$(http_status "${SCEN_URLS[$i]}" "${SCEN_TOKENS[$i]}")
    [[ $code == 200 ]] || die "${SCEN_NAMES[$i]}: GET ${SCEN_URLS[$i]} with token answered $code, want 200"
done
for url in "$GATE_HS256" "$GATE_ES256"; do
    code=$(http_status "$url$BENCH_PATH")
    [[ $code == 401 ]] || die "GET $url$BENCH_PATH without a token answered $code, want 401"
done
code=$(http_status "$GATE_HS256$BENCH_PATH" "$TOKEN_ES256")
[[ $code == 401 ]] || die "HS256 gate accepted an ES256 token (answered $code, want 401)"

# ---------------------------------------------------------------- load
# load URL TOKEN DURATION OUTFILE: one load-generator run, pinned. It runs in
# the background and is waited for, so Ctrl-C / SIGTERM interrupt it at once.
load() {
    local url=$1 token=$2 dur=$3 out=$4 limit
    limit=$(($(duration_secs "$dur") + 30))
    case $LOADGEN in
        wrk)
            (pin "$LOAD_CPU" timeout -k 5 "$limit" wrk -t"$THREADS" -c"$CONNS" -d"$dur" \
                --timeout 5s --latency -H "Authorization: Bearer $token" "$url") >"$out" 2>&1 &
            ;;
        oha)
            (pin "$LOAD_CPU" timeout -k 5 "$limit" oha --no-tui -z "$dur" -c "$CONNS" \
                -H "Authorization: Bearer $token" "$url") >"$out" 2>&1 &
            ;;
    esac
    LOAD_PID=$!
    if ! wait "$LOAD_PID"; then
        LOAD_PID=""
        die "$LOADGEN failed against $url (output: $(tail -n 5 "$out" | tr '\n' ' '))"
    fi
    LOAD_PID=""
}

# parse OUTFILE: print "req_per_s p50_ms p99_ms errors".
parse() {
    case $LOADGEN in
        wrk) awk '
            function ms(v) {
                if (v ~ /us$/) return substr(v, 1, length(v) - 2) / 1000
                if (v ~ /ms$/) return substr(v, 1, length(v) - 2) + 0
                if (v ~ /m$/)  return substr(v, 1, length(v) - 1) * 60000
                if (v ~ /s$/)  return substr(v, 1, length(v) - 1) * 1000
                return v + 0
            }
            $1 == "50%" && lat { p50 = ms($2) }
            $1 == "99%" && lat { p99 = ms($2) }
            /Latency Distribution/ { lat = 1 }
            /^Requests\/sec:/ { rps = $2 }
            /Non-2xx or 3xx responses:/ { err += $NF }
            /Socket errors:/ { gsub(/,/, ""); err += $4 + $6 + $8 + $10 }
            END {
                if (rps == "") exit 1
                printf "%.2f %.3f %.3f %d\n", rps, p50, p99, err
            }' "$1" ;;
        oha) awk '
            function ms(v, u) {
                if (u ~ /^sec/) return v * 1000
                if (u == "ms") return v + 0
                if (u ~ /^(us|µs)$/) return v / 1000
                if (u == "ns") return v / 1000000
                return v * 1000
            }
            /Requests\/sec:/ { rps = $2 }
            /^ *50(\.00)?% in / { p50 = ms($3, $4) }
            /^ *99(\.00)?% in / { p99 = ms($3, $4) }
            /^ *\[[0-9]+\] [0-9]+ responses/ {
                code = $1; gsub(/[\[\]]/, "", code)
                if (code !~ /^[23]/) err += $2
            }
            /Error distribution/ { errs = 1; next }
            errs && /^ *\[[0-9]+\]/ { n = $1; gsub(/[\[\]]/, "", n); err += n }
            END {
                if (rps == "") exit 1
                printf "%.2f %.3f %.3f %d\n", rps, p50, p99, err
            }' "$1" ;;
    esac
}

# A busy host (a build, another benchmark) makes every number here noise:
# sample how busy the CPUs are for 1 s, with the servers idle.
cpu_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $5 + $6; exit }' /proc/stat; }
if [[ -r /proc/stat ]]; then
    ticks_before=$(cpu_ticks)
    sleep 1
    HOST_BUSY=$(awk -v a="$ticks_before" -v b="$(cpu_ticks)" 'BEGIN {
        split(a, x, " "); split(b, y, " "); busy = y[1] - x[1]; idle = y[2] - x[2]
        printf "%d", (busy + idle > 0) ? 100 * busy / (busy + idle) : 0 }')
    if ((HOST_BUSY > 15)); then
        log "warning: the host is ${HOST_BUSY}% busy before any load; results will be noisy — run on an idle machine"
    fi
else
    HOST_BUSY="?"
fi

n=${#SCEN_NAMES[@]}
per_run=$(duration_secs "$DURATION")
total=$((n * $(duration_secs "$WARMUP") + ROUNDS * n * per_run))
log "load: $LOADGEN, $CONNS connections, $THREADS thread(s); warm-up $WARMUP, $ROUNDS round(s) x $n scenarios x $DURATION (~${total}s)"
if [[ $PIN == 1 ]]; then
    log "cores: load generator on $LOAD_CPU; upstream and jwtgate on $SERVER_CPU"
fi

for i in "${!SCEN_NAMES[@]}"; do
    log "warm-up ${SCEN_NAMES[$i]}"
    load "${SCEN_URLS[$i]}" "${SCEN_TOKENS[$i]}" "$WARMUP" "$TMP/warmup-${SCEN_NAMES[$i]}.txt"
done

RAW="$TMP/raw.tsv" # scenario round rps p50 p99 errors
: >"$RAW"
for ((r = 1; r <= ROUNDS; r++)); do
    for i in "${!SCEN_NAMES[@]}"; do
        out="$TMP/run-$r-${SCEN_NAMES[$i]}.txt"
        load "${SCEN_URLS[$i]}" "${SCEN_TOKENS[$i]}" "$DURATION" "$out"
        read -r rps p50 p99 errs < <(parse "$out") || die "could not parse $LOADGEN output $out"
        log "round $r ${SCEN_NAMES[$i]}: $rps req/s, p50 ${p50}ms, p99 ${p99}ms, errors $errs"
        printf '%s\t%d\t%s\t%s\t%s\t%s\n' "${SCEN_NAMES[$i]}" "$r" "$rps" "$p50" "$p99" "$errs" >>"$RAW"
    done
done

# ---------------------------------------------------------------- report
# One line per scenario: name mean_rps min_rps max_rps mean_p50 mean_p99 errors
summary() {
    awk -F'\t' '
        { k = $1; if (!(k in cnt)) order[++m] = k
          cnt[k]++; rps[k] += $3; p50[k] += $4; p99[k] += $5; err[k] += $6
          if (!(k in lo) || $3 < lo[k]) lo[k] = $3
          if (!(k in hi) || $3 > hi[k]) hi[k] = $3 }
        END { for (j = 1; j <= m; j++) { k = order[j]
            printf "%s %.0f %.0f %.0f %.3f %.3f %d\n", k, rps[k] / cnt[k], lo[k], hi[k],
                p50[k] / cnt[k], p99[k] / cnt[k], err[k] } }' "$RAW"
}

# table FORMAT(text|md)
table() {
    local fmt=$1 name mean lo hi p50 p99 errs label i rps_ratio p99_ratio
    local d_rps="" d_p99=""
    if [[ $fmt == md ]]; then
        printf '| scenario | req/s (mean) | req/s min–max | p50 ms | p99 ms | errors | req/s gate/direct | p99 gate/direct |\n'
        printf '|---|---:|---:|---:|---:|---:|---:|---:|\n'
    else
        printf '%-30s %10s %17s %8s %8s %7s %10s %10s\n' scenario 'req/s' 'req/s min-max' 'p50 ms' 'p99 ms' errors 'rps g/d' 'p99 g/d'
    fi
    while read -r name mean lo hi p50 p99 errs; do
        label=$name
        for i in "${!SCEN_NAMES[@]}"; do
            if [[ ${SCEN_NAMES[$i]} == "$name" ]]; then label=${SCEN_LABELS[$i]}; fi
        done
        if [[ $name == direct ]]; then
            d_rps=$mean d_p99=$p99 rps_ratio="1.00" p99_ratio="1.00"
        else
            rps_ratio=$(awk -v a="$mean" -v b="$d_rps" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }')
            p99_ratio=$(awk -v a="$p99" -v b="$d_p99" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }')
        fi
        if [[ $fmt == md ]]; then
            printf '| %s | %s | %s–%s | %s | %s | %s | %s | %s |\n' "$label" "$mean" "$lo" "$hi" "$p50" "$p99" "$errs" "$rps_ratio" "$p99_ratio"
        else
            printf '%-30s %10s %17s %8s %8s %7s %10s %10s\n' "$label" "$mean" "$lo-$hi" "$p50" "$p99" "$errs" "$rps_ratio" "$p99_ratio"
        fi
    done < <(summary)
}

# vs_nginx: each jwtgate row over the nginx plain-proxy row (same run), the
# cost of token + revocation checks relative to a plain proxy hop.
vs_nginx() {
    summary | awk '
        { rps[$1] = $2; p99[$1] = $6 }
        END { if (!("nginx-proxy" in rps) || rps["nginx-proxy"] == 0) exit
              for (k in rps) if (k ~ /^gate-/)
                  printf "%s / nginx plain proxy: req/s %.2f, p99 %.2f\n", k, rps[k] / rps["nginx-proxy"], p99[k] / p99["nginx-proxy"] }' | sort
}

LOADGEN_VERSION=$(
    case $LOADGEN in
        wrk) { wrk -v 2>&1 || true; } | awk 'NR == 1 { print $1, $2 }' ;;
        oha) { oha --version 2>&1 || true; } | awk 'NR == 1' ;;
    esac
)
COMMIT=$(git rev-parse -q --verify --short HEAD 2>/dev/null || echo "none (no commits yet)")
if [[ -n $(git status --porcelain 2>/dev/null | head -n 1) ]]; then COMMIT="$COMMIT, working tree modified"; fi
DATE=$(date -u '+%Y-%m-%d %H:%M:%S UTC')
CPU_MODEL=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)
PINNING=$([[ $PIN == 1 ]] && echo "load generator on core $LOAD_CPU; upstream + jwtgate on core $SERVER_CPU" || echo "none")

echo
echo "jwtgate whole-proxy benchmark — $DATE, nproc $(nproc), commit $COMMIT"
echo "$LOADGEN_VERSION, $CONNS conns, $THREADS thread(s), $ROUNDS x $DURATION per scenario; upstream: $UPSTREAM_DESC"
echo
table text
vs_nginx
errors_total=$(awk -F'\t' '{ s += $6 } END { print s + 0 }' "$RAW")
if ((errors_total > 0)); then
    log "warning: $errors_total non-2xx responses or socket errors during the measured runs; see KEEP_TMP=1 output"
fi

if [[ -n $RESULTS ]]; then
    mkdir -p "$(dirname "$RESULTS")"
    {
        echo "# jwtgate whole-proxy benchmark"
        echo
        echo "- date: $DATE"
        echo "- commit: $COMMIT"
        echo "- binary: $JWTGATE, built $(date -u -r "$JWTGATE" '+%Y-%m-%d %H:%M:%S UTC' 2>/dev/null || echo '?')$([[ $SKIP_BUILD == 1 ]] && echo ' (SKIP_BUILD=1: may not match the commit)')"
        echo "- nproc: $(nproc)${CPU_MODEL:+ ($CPU_MODEL)}"
        echo "- pinning: $PINNING"
        echo "- host CPU busy before the load (1 s sample, all cores): ${HOST_BUSY}%"
        echo "- load generator: $LOADGEN_VERSION, $CONNS connections, $THREADS thread(s), keep-alive, GET $BENCH_PATH"
        echo "- upstream: $UPSTREAM_DESC"
        echo "- runs: warm-up $WARMUP per scenario, then $ROUNDS round(s) of (${SCEN_NAMES[*]}) x $DURATION"
        echo "- token: one token per algorithm, repeated on every request (verified-token cache hit after the first)"
        echo
        table md
        echo
        vs_nginx
        echo
        echo "Ratios compare each gate row with the direct row of the same run (mean over rounds)."
        echo "See bench/README.md for what these numbers do and do not show."
        echo
        echo "<details><summary>per-round results</summary>"
        echo
        echo "| scenario | round | req/s | p50 ms | p99 ms | errors |"
        echo "|---|---:|---:|---:|---:|---:|"
        awk -F'\t' '{ printf "| %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6 }' "$RAW"
        echo
        echo "</details>"
    } >"$RESULTS"
    log "wrote $RESULTS"
fi
