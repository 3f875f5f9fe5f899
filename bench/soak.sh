#!/usr/bin/env bash
# Memory soak for jwtgate (issue 10, point 8): at least 1 million distinct
# valid tokens (a fresh jti each) through one instance with the Redis store
# and the default cache sizes, the gate's RSS sampled over the run. It must
# level off once the verified-token and revocation caches are full.
# Not part of CI: it takes minutes.
#
#   bench/soak.sh                          # 1,000,000 tokens (~4-6 min on 2 cores)
#   TOKENS=200000 bench/soak.sh            # a quick look (~1 min)
#   SCRAPE_SECS=10 bench/soak.sh           # with a Prometheus-like /metrics scrape
#
# Environment (all optional):
#   TOKENS=1000000     distinct tokens to send (each a fresh jti)
#   CONNS=32           keep-alive connections of the load client
#   REVOKE_EVERY=100   token i with i % REVOKE_EVERY == 0 is logged out (POST
#                      /logout, must answer 200) and re-sent (must answer 401);
#                      0 = no revocations
#   SUBJECTS=0         distinct `sub` values (0 = a new sub per token, so every
#                      token brings two new revocation-cache keys: jti and sub)
#   SAMPLE_EVERY=25000 RSS sample every that many tokens
#   MAX_SECS=1200      the load client stops handing out tokens after this long
#   ADMIN=1            1 = the admin listener is on (and with it the metrics
#                      recorder); 0 = no admin section, as in a config without one
#   SCRAPE_SECS=0      scrape the admin /metrics every that many seconds during
#                      the load (0 = never, only once after the final sample)
#   SETTLE_SECS=5      idle time after the load before one more RSS sample
#   MAX_GROWTH_PCT=5   verdict threshold: RSS growth allowed after the caches filled
#   UPSTREAM=auto      jwtgate | nginx | auto (`jwtgate upstream`, else nginx)
#   LOAD_CPU=0 SERVER_CPU=1   cores for the load client / redis + upstream + jwtgate
#   PIN=auto           1 = always pin with taskset, 0 = never, auto = if >= 2 cores
#   SKIP_BUILD=0       1 = use the binaries already in target/release
#   JWTGATE=target/release/jwtgate   binary under test
#   RESULTS=bench/results/soak-<UTC date>-<variant>.md  markdown report ('' to
#                      skip), variant: scrape<N>s | noscrape | noadmin; the samples
#                      go next to it as .csv (and .png when matplotlib is installed)
#   KEEP_TMP=0         1 = keep the temp dir (configs, logs, client output)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

TOKENS=${TOKENS:-1000000}
CONNS=${CONNS:-32}
REVOKE_EVERY=${REVOKE_EVERY:-100}
SUBJECTS=${SUBJECTS:-0}
SAMPLE_EVERY=${SAMPLE_EVERY:-25000}
MAX_SECS=${MAX_SECS:-1200}
ADMIN=${ADMIN:-1}
SCRAPE_SECS=${SCRAPE_SECS:-0}
SETTLE_SECS=${SETTLE_SECS:-5}
MAX_GROWTH_PCT=${MAX_GROWTH_PCT:-5}
UPSTREAM=${UPSTREAM:-auto}
LOAD_CPU=${LOAD_CPU:-0}
SERVER_CPU=${SERVER_CPU:-1}
PIN=${PIN:-auto}
SKIP_BUILD=${SKIP_BUILD:-0}
JWTGATE=${JWTGATE:-target/release/jwtgate}
TOKEN_BIN=${TOKEN_BIN:-target/release/examples/bench_token}
CLIENT_BIN=${CLIENT_BIN:-target/release/examples/soak_client}
if [[ $ADMIN == 0 ]]; then VARIANT=noadmin
elif ((SCRAPE_SECS > 0)); then VARIANT=scrape${SCRAPE_SECS}s
else VARIANT=noscrape; fi
RESULTS=${RESULTS-bench/results/soak-$(date -u +%Y-%m-%d)-$VARIANT.md}
KEEP_TMP=${KEEP_TMP:-0}

ISSUER=jwtgate-soak
AUDIENCE=soak-api
KID=k1
SOAK_PATH=/api/soak
# The defaults of jwt.verified_cache_entries and revocation.cache.max_entries
# (src/config/mod.rs, config/reference.yaml). The generated config leaves
# both unset, so the gate runs with its defaults; these are for the report.
VERIFIED_CACHE_DEFAULT=100000
REVOCATION_CACHE_DEFAULT=100000

log() { printf '[soak] %s\n' "$*" >&2; }
die() { printf '[soak] error: %s\n' "$*" >&2; exit 1; }
case $ADMIN in 0 | 1) ;; *) die "ADMIN must be 0 or 1" ;; esac
if [[ $ADMIN == 0 ]] && ((SCRAPE_SECS > 0)); then die "SCRAPE_SECS needs ADMIN=1 (/metrics is on the admin listener)"; fi

# ---------------------------------------------------------------- cleanup
TMP=$(mktemp -d "${TMPDIR:-/tmp}/jwtgate-soak.XXXXXX")
PIDS=()      # only processes this script started
LOGS=()      # their log files, shown when the script fails

cleanup() {
    local rc=$? pid i
    trap - EXIT INT TERM
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
                printf '[soak] --- last lines of %s\n' "${i#"$TMP"/}" >&2
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
case $PIN in
    auto) if (($(nproc) >= 2)) && command -v taskset >/dev/null; then PIN=1; else PIN=0; fi ;;
    0 | 1) ;;
    *) die "PIN must be 0, 1 or auto" ;;
esac
if [[ $PIN == 1 ]] && ! command -v taskset >/dev/null; then die "PIN=1 but taskset is not installed"; fi
((PIN == 1)) || log "warning: not pinning (nproc=$(nproc)); load client and servers share cores"

# pin CPU CMD...: run CMD on one core (exec'd, so $! of `(pin ...) &` is CMD's PID).
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

# stop PID: stop one process this script started, and forget it.
stop() {
    local pid=$1 i keep=()
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    for i in ${PIDS[@]+"${PIDS[@]}"}; do [[ $i == "$pid" ]] || keep+=("$i"); done
    PIDS=(${keep[@]+"${keep[@]}"})
}

# wait_for_url PID FILE PREFIX: wait for "PREFIX listening on http://IP:PORT"
# in FILE and print the URL.
wait_for_url() {
    local pid=$1 file=$2 prefix=$3 url deadline=$((SECONDS + 30))
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
    die "'$prefix' did not print its listening line within 30s"
}

# http_status METHOD URL [TOKEN]: the status code of one request (000 when unreachable).
http_status() {
    local args=(-s -o /dev/null -w '%{http_code}' --max-time 5 -X "$1")
    if [[ -n ${3:-} ]]; then args+=(-H "Authorization: Bearer $3"); fi
    curl "${args[@]}" "$2" || true
}

rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
mib() { if [[ -n $1 ]]; then awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; else printf 'n/a'; fi; }

# ---------------------------------------------------------------- tools
for tool in curl redis-server redis-cli; do
    command -v "$tool" >/dev/null || die "$tool is required (apt-get install curl redis-server redis-tools)"
done
[[ -r /proc/self/status ]] || die "/proc is required (RSS is read from /proc/<pid>/status)"

# ---------------------------------------------------------------- build
if [[ $SKIP_BUILD != 1 ]]; then
    log "building (release): jwtgate + examples bench_token, soak_client"
    cargo build --release --bin jwtgate --example bench_token --example soak_client >&2
fi
for bin in "$JWTGATE" "$TOKEN_BIN" "$CLIENT_BIN"; do
    [[ -x $bin ]] || die "$bin not found (cargo build --release --bin jwtgate --example bench_token --example soak_client)"
done

# ---------------------------------------------------------------- redis
# A private redis-server on a free loopback port: no persistence, no other
# clients. Retries a few random ports (one may be taken).
start_redis() {
    local port attempt i
    for attempt in 1 2 3 4 5; do
        port=$((20000 + RANDOM % 30000))
        start "redis-$attempt" "$SERVER_CPU" redis-server --bind 127.0.0.1 --port "$port" \
            --save "" --appendonly no --dir "$TMP" --protected-mode yes --loglevel warning
        for ((i = 0; i < 50; i++)); do
            if [[ $(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null) == PONG ]]; then
                REDIS_PORT=$port
                REDIS_PID=$STARTED_PID
                return 0
            fi
            kill -0 "$STARTED_PID" 2>/dev/null || break
            sleep 0.1
        done
        stop "$STARTED_PID"
    done
    die "redis-server did not start"
}
start_redis
REDIS_VERSION=$(redis-server --version | grep -oE 'v=[0-9.]+' | cut -c3-)
log "redis-server $REDIS_VERSION on 127.0.0.1:$REDIS_PORT (pid $REDIS_PID)"

# ---------------------------------------------------------------- upstream
start_nginx_upstream() {
    command -v nginx >/dev/null || die "nginx is not installed"
    local dir="$TMP/nginx" port try i
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
        for ((i = 0; i < 30; i++)); do
            if [[ $(http_status GET "http://127.0.0.1:$port/") == 200 ]]; then
                UPSTREAM_URL="http://127.0.0.1:$port"
                return 0
            fi
            kill -0 "$STARTED_PID" 2>/dev/null || break
            sleep 0.1
        done
        stop "$STARTED_PID"
    done
    die "nginx upstream did not start (see $dir/error.log)"
}

if [[ $UPSTREAM == auto ]]; then
    if "$JWTGATE" upstream --help >/dev/null 2>&1; then UPSTREAM=jwtgate
    elif command -v nginx >/dev/null; then UPSTREAM=nginx
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

# ---------------------------------------------------------------- gate
SECRET_FILE="$TMP/hs256.secret"
ADMIN_TOKEN_FILE="$TMP/admin.token"
(umask 077 && head -c 48 /dev/urandom | base64 | tr -d '\n' >"$SECRET_FILE")
(umask 077 && head -c 32 /dev/urandom | base64 | tr -d '\n' >"$ADMIN_TOKEN_FILE")
ADMIN_TOKEN=$(cat "$ADMIN_TOKEN_FILE")

# Cache sizes are deliberately not set: the gate runs with its defaults.
CFG="$TMP/jwtgate-soak.yaml"
cat >"$CFG" <<EOF
# jwtgate soak config, written by bench/soak.sh
listen: 127.0.0.1:0
upstream:
  url: $UPSTREAM_URL
jwt:
  issuers:
    - issuer: $ISSUER
      audiences: [$AUDIENCE]
      algorithms: [HS256]
      keys:
        - { kid: $KID, secret_file: "$SECRET_FILE" }
revocation:
  store: redis
  redis:
    url: redis://127.0.0.1:$REDIS_PORT/0
logout:
  path: /logout
  methods: [POST]
routes:
  - match: { path: /healthz }
    auth: none
EOF
if [[ $ADMIN == 1 ]]; then
    cat >>"$CFG" <<EOF
admin:
  listen: 127.0.0.1:0
  token_file: "$ADMIN_TOKEN_FILE"
EOF
fi
start jwtgate "$SERVER_CPU" "$JWTGATE" run -c "$CFG"
GATE_PID=$STARTED_PID
GATE_OUT=$STARTED_OUT
GATE_URL=$(wait_for_url "$GATE_PID" "$GATE_OUT" "jwtgate")
ADMIN_URL=""
if [[ $ADMIN == 1 ]]; then ADMIN_URL=$(wait_for_url "$GATE_PID" "$GATE_OUT" "jwtgate admin"); fi
log "jwtgate (pid $GATE_PID) at $GATE_URL${ADMIN_URL:+, admin at $ADMIN_URL}"

mint() { # print a fresh token (bench_token: its own random jti)
    "$TOKEN_BIN" --alg HS256 --secret-file "$SECRET_FILE" --iss "$ISSUER" --aud "$AUDIENCE" \
        --kid "$KID" --ttl-secs 3600
}

# Ready: subscribed to the revocation channel (until then the revocation
# cache stays off), asked of Redis itself. Then sanity before any load: a
# token is accepted, no token is refused.
subscribers() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" pubsub numsub jwtgate:revocations 2>/dev/null | sed -n 2p; }
for ((i = 0; i < 100; i++)); do
    (($(subscribers || echo 0) >= 1)) && break
    sleep 0.1
done
(($(subscribers || echo 0) >= 1)) || die "jwtgate never subscribed to jwtgate:revocations"
if [[ $ADMIN == 1 ]]; then
    [[ $(http_status GET "$ADMIN_URL/readyz") == 200 ]] || die "jwtgate is not ready ($ADMIN_URL/readyz)"
fi
code=$(http_status GET "$GATE_URL$SOAK_PATH" "$(mint)")
[[ $code == 200 ]] || die "GET $SOAK_PATH with a fresh token answered $code, want 200"
code=$(http_status GET "$GATE_URL$SOAK_PATH")
[[ $code == 401 ]] || die "GET $SOAK_PATH without a token answered $code, want 401"

# ---------------------------------------------------------------- load
HOST_BUSY="?"
cpu_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $5 + $6; exit }' /proc/stat; }
if [[ -r /proc/stat ]]; then
    ticks_before=$(cpu_ticks)
    sleep 1
    HOST_BUSY=$(awk -v a="$ticks_before" -v b="$(cpu_ticks)" 'BEGIN {
        split(a, x, " "); split(b, y, " "); busy = y[1] - x[1]; idle = y[2] - x[2]
        printf "%d", (busy + idle > 0) ? 100 * busy / (busy + idle) : 0 }')
    ((HOST_BUSY <= 15)) || log "warning: the host is ${HOST_BUSY}% busy before the load; throughput will be lower (RSS is what this measures)"
fi

SCRAPER_PID=""
if ((SCRAPE_SECS > 0)); then
    (
        while sleep "$SCRAPE_SECS"; do
            curl -s -o /dev/null --max-time 5 -H "Authorization: Bearer $ADMIN_TOKEN" "$ADMIN_URL/metrics" || true
        done
    ) </dev/null >/dev/null 2>&1 &
    SCRAPER_PID=$!
    PIDS+=("$SCRAPER_PID")
fi

CSV="$TMP/rss.csv"
log "load: $TOKENS distinct tokens, $CONNS connections, 1 in $REVOKE_EVERY revoked by logout, subjects ${SUBJECTS/#0/one per token}, RSS every $SAMPLE_EVERY tokens$( ((SCRAPE_SECS > 0)) && echo ", /metrics scraped every ${SCRAPE_SECS}s" || echo ", /metrics not scraped during the load")"
((PIN == 1)) && log "cores: load client on $LOAD_CPU; redis, upstream and jwtgate on $SERVER_CPU"
STARTED_AT=$(date -u '+%Y-%m-%d %H:%M:%S UTC')
start client "$LOAD_CPU" timeout -k 5 $((MAX_SECS + 120)) "$CLIENT_BIN" \
    --url "$GATE_URL" --secret-file "$SECRET_FILE" --pid "$GATE_PID" \
    --iss "$ISSUER" --aud "$AUDIENCE" --kid "$KID" --path "$SOAK_PATH" --logout-path /logout \
    --tokens "$TOKENS" --conns "$CONNS" --revoke-every "$REVOKE_EVERY" --subjects "$SUBJECTS" \
    --sample-every "$SAMPLE_EVERY" --max-secs "$MAX_SECS" --csv "$CSV"
CLIENT_PID=$STARTED_PID
CLIENT_OUT=$STARTED_OUT
# The client's progress (stderr) to ours as it comes.
tail -n +1 -f "$TMP/client.err" --pid "$CLIENT_PID" >&2 &
TAIL_PID=$!
PIDS+=("$TAIL_PID")
CLIENT_RC=0
wait "$CLIENT_PID" || CLIENT_RC=$?
wait "$TAIL_PID" 2>/dev/null || true
[[ -n $SCRAPER_PID ]] && stop "$SCRAPER_PID"
kill -0 "$GATE_PID" 2>/dev/null || die "jwtgate died during the load"
[[ -s $CSV ]] || die "the load client wrote no samples (exit $CLIENT_RC)"

# ---------------------------------------------------------------- after the load
sleep "$SETTLE_SECS"
IDLE_RSS=$(rss_kib "$GATE_PID")

# Positive and negative controls from outside the load client, with a token
# minted by bench_token: a fresh token is accepted; revoked (through the
# admin API, POST /revocations {"token": ...}, or with ADMIN=0 through
# POST /logout), it is refused.
CONTROL=$(mint)
ctl_before=$(http_status GET "$GATE_URL$SOAK_PATH" "$CONTROL")
if [[ $ADMIN == 1 ]]; then
    CTL_HOW="admin: POST /revocations {token}"
    ctl_revoke=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -X POST \
        -H "Authorization: Bearer $ADMIN_TOKEN" -H 'Content-Type: application/json' \
        --data "{\"token\":\"$CONTROL\"}" "$ADMIN_URL/revocations" || true)
else
    CTL_HOW="curl: POST /logout"
    ctl_revoke=$(http_status POST "$GATE_URL/logout" "$CONTROL")
fi
ctl_after=$(http_status GET "$GATE_URL$SOAK_PATH" "$CONTROL")
CONTROLS_OK=1
[[ $ctl_before == 200 && $ctl_revoke == 200 && $ctl_after == 401 ]] || CONTROLS_OK=0

METRICS=""
if [[ $ADMIN == 1 ]]; then
    METRICS=$(curl -s --max-time 10 -H "Authorization: Bearer $ADMIN_TOKEN" "$ADMIN_URL/metrics" || true)
fi
metric() { printf '%s\n' "$METRICS" | awk -v m="$1" 'index($0, m) == 1 { print $NF; f = 1 } END { if (!f) print 0 }' | head -n 1; }
CHECKS_CACHE=$(metric 'jwtgate_revocation_checks_total{source="cache"}')
CHECKS_MISS=$(metric 'jwtgate_revocation_checks_total{source="store_miss"}')
CHECKS_HIT=$(metric 'jwtgate_revocation_checks_total{source="store_hit"}')
LOGOUTS=$(printf '%s\n' "$METRICS" | awk '/^jwtgate_logouts_total/ { s += $NF } END { print s + 0 }')
PUBSUB_MSGS=$(metric 'jwtgate_pubsub_messages_total')
PUBSUB_RECONNECTS=$(metric 'jwtgate_pubsub_reconnects_total')
STORE_ERRORS=$(printf '%s\n' "$METRICS" | awk '/^jwtgate_store_errors_total/ { s += $NF } END { print s + 0 }')
AFTER_SCRAPE_RSS=$(rss_kib "$GATE_PID")
AFTER_SCRAPE=""
[[ $ADMIN == 1 ]] && AFTER_SCRAPE="; after one /metrics scrape $(mib "$AFTER_SCRAPE_RSS") MiB"
REDIS_KEYS=$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" dbsize 2>/dev/null || echo '?')
REDIS_MEM=$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" info memory 2>/dev/null | awk -F: '/^used_memory_human:/ { gsub(/\r/, ""); print $2 }')
GATE_THREADS=$(awk '/^Threads:/ { print $2 }' "/proc/$GATE_PID/status")
GATE_FDS=$(find "/proc/$GATE_PID/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)

# ---------------------------------------------------------------- analysis
SUMMARY=$(grep '^summary ' "$CLIENT_OUT" || true)
[[ -n $SUMMARY ]] || die "the load client printed no summary (exit $CLIENT_RC)"
field() { printf '%s\n' "$SUMMARY" | tr ' ' '\n' | awk -F= -v k="$1" '$1 == k { print $2 }'; }
SENT=$(field tokens)
ELAPSED=$(field elapsed_s)
TPS=$(field tokens_per_s)
RPS=$(field requests_per_s)
REVOKED=$(field revoked)
N5XX=$(field 5xx)
CLIENT_OK=$(field ok)
TIMED_OUT=$(field timed_out)

FILL=$((VERIFIED_CACHE_DEFAULT > REVOCATION_CACHE_DEFAULT ? VERIFIED_CACHE_DEFAULT : REVOCATION_CACHE_DEFAULT))
# rss_at TOKENS: RSS (KiB) of the first sample at or past TOKENS.
rss_at() { awk -F, -v t="$1" 'NR > 1 && $1 >= t { print $3; exit }' "$CSV"; }
RSS_START=$(awk -F, 'NR == 2 { print $3 }' "$CSV")
RSS_FILL=$(rss_at "$FILL")
RSS_FILL2=$(rss_at $((2 * FILL)))
RSS_END=$(awk -F, 'NR > 1 { r = $3 } END { print r }' "$CSV")
RSS_MAX=$(awk -F, 'NR > 1 && $3 > m { m = $3 } END { print m }' "$CSV")
HWM_END=$(awk -F, 'NR > 1 { r = $5 } END { print r }' "$CSV")
# Least-squares slope of RSS over tokens in the second half of the run, in
# MiB per 100k tokens: ~0 when flat, whatever the noise at either end.
SLOPE=$(awk -F, -v half="$((SENT / 2))" 'NR > 1 && $1 >= half {
        n++; x = $1 / 100000; y = $3 / 1024; sx += x; sy += y; sxx += x * x; sxy += x * y }
    END { d = n * sxx - sx * sx; if (n >= 3 && d > 0) printf "%.2f", (n * sxy - sx * sy) / d; else print "n/a" }' "$CSV")

VERDICT="incomplete"
GROWTH_LINE=""
if [[ -n $RSS_FILL2 && -n $RSS_FILL ]]; then
    read -r G1 G1P G2 G2P < <(awk -v f="$RSS_FILL" -v f2="$RSS_FILL2" -v e="$RSS_END" 'BEGIN {
        printf "%.1f %.1f %.1f %.1f\n", (e - f) / 1024, 100 * (e - f) / f, (e - f2) / 1024, 100 * (e - f2) / f2 }')
    GROWTH_LINE="after the caches filled: ${G1} MiB (${G1P}%) from $FILL tokens to the end, ${G2} MiB (${G2P}%) from $((2 * FILL)) tokens to the end; second-half slope ${SLOPE} MiB per 100k tokens"
    # Over a short run the window after 2 x FILL is too short for slow
    # linear growth to add up to MAX_GROWTH_PCT: judge only from 10 x FILL.
    if ((SENT < 10 * FILL)); then
        VERDICT="too short to judge ($SENT tokens, fewer than 10 x the cache size $FILL)"
    elif awk -v g="$G2P" -v m="$MAX_GROWTH_PCT" 'BEGIN { exit !(g <= m) }'; then
        VERDICT="LEVELS OFF"
    else
        VERDICT="GROWS"
    fi
fi
if [[ $CLIENT_OK != true || $CONTROLS_OK != 1 ]]; then STATUS_OK=0; else STATUS_OK=1; fi
if [[ $TIMED_OUT == true ]]; then VERDICT="$VERDICT (incomplete: MAX_SECS reached after $SENT tokens)"; fi

# rss_table FORMAT(text|md): one row per sample, with a bar scaled to the peak.
rss_table() {
    awk -F, -v fmt="$1" -v max="$RSS_MAX" -v fill="$FILL" '
        NR == 1 { next }
        {
            bar = ""; w = (max > 0) ? int(40 * $3 / max + 0.5) : 0
            for (i = 0; i < w; i++) bar = bar "#"
            note = ($1 >= fill && !noted) ? " <- caches full" : ""
            if ($1 >= fill) noted = 1
            if (fmt == "md")
                printf "| %d | %.1f | %.0f | %.1f | %.1f | `%s`%s |\n", $1, $2, $6, $3 / 1024, $4 / 1024, bar, note
            else
                printf "%9d %9.1f %8.0f %9.1f %9.1f  %s%s\n", $1, $2, $6, $3 / 1024, $4 / 1024, bar, note
        }' "$CSV"
}

status_lines() { grep '^status ' "$CLIENT_OUT" | sed 's/^status //'; }

COMMIT=$(git rev-parse -q --verify --short HEAD 2>/dev/null || echo "none")
if [[ -n $(git status --porcelain -- src Cargo.toml Cargo.lock 2>/dev/null | head -n 1) ]]; then COMMIT="$COMMIT, src modified"; fi
DATE=$(date -u '+%Y-%m-%d %H:%M:%S UTC')
CPU_MODEL=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)
PINNING=$([[ $PIN == 1 ]] && echo "load client on core $LOAD_CPU; redis-server, upstream and jwtgate on core $SERVER_CPU" || echo "none")

echo
echo "jwtgate memory soak — $DATE, nproc $(nproc), commit $COMMIT"
echo "$SENT distinct tokens in ${ELAPSED}s: $TPS tokens/s, $RPS requests/s; $REVOKED revoked by logout; $CONNS connections"
echo
printf '%9s %9s %8s %9s %9s\n' tokens elapsed_s 'tok/s' 'RSS MiB' 'anon MiB'
rss_table text
echo
echo "RSS: start $(mib "$RSS_START") MiB, at $FILL tokens $(mib "$RSS_FILL") MiB, at $((2 * FILL)) $(mib "$RSS_FILL2") MiB, end $(mib "$RSS_END") MiB, peak $(mib "$HWM_END") MiB (VmHWM); ${SETTLE_SECS}s idle $(mib "$IDLE_RSS") MiB$AFTER_SCRAPE"
[[ -n $GROWTH_LINE ]] && echo "$GROWTH_LINE"
echo "statuses: $(status_lines | tr '\n' ' ')"
echo "controls: fresh token $ctl_before, revoked ($CTL_HOW) $ctl_revoke, then $ctl_after (want 200 200 401)"
echo "verdict: $VERDICT (threshold ${MAX_GROWTH_PCT}% after $((2 * FILL)) tokens); statuses $([[ $STATUS_OK == 1 ]] && echo "all as expected" || echo "NOT all as expected"), 5xx: $N5XX"

if [[ -n $RESULTS ]]; then
    mkdir -p "$(dirname "$RESULTS")"
    RESULTS_CSV="${RESULTS%.md}.csv"
    cp "$CSV" "$RESULTS_CSV"
    PLOT=""
    if python3 -c 'import matplotlib' 2>/dev/null; then
        RESULTS_PNG="${RESULTS%.md}.png"
        if python3 - "$RESULTS_CSV" "$RESULTS_PNG" "$FILL" <<'PY' 2>/dev/null; then PLOT=$RESULTS_PNG; fi
import csv, sys
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
rows = list(csv.DictReader(open(sys.argv[1])))
x = [int(r["tokens"]) / 1e6 for r in rows]
fig, ax = plt.subplots(figsize=(7, 3.5))
ax.plot(x, [int(r["rss_kib"]) / 1024 for r in rows], marker=".", label="VmRSS")
ax.plot(x, [int(r["rss_anon_kib"]) / 1024 for r in rows], marker=".", label="RssAnon")
ax.axvline(int(sys.argv[3]) / 1e6, color="grey", linestyle="--", label="caches full")
ax.set_xlabel("distinct tokens sent (millions)")
ax.set_ylabel("MiB")
ax.set_ylim(bottom=0)
ax.set_title("jwtgate RSS under distinct tokens")
ax.grid(alpha=0.3)
ax.legend(loc="lower right")
fig.tight_layout()
fig.savefig(sys.argv[2], dpi=100)
PY
    fi
    {
        echo "# jwtgate memory soak"
        echo
        echo "Issue 10, point 8: distinct valid tokens through one instance with the Redis"
        echo "store and default cache sizes; RSS of the gate sampled over the run."
        echo "Written by \`bench/soak.sh\` (see bench/README.md)."
        echo
        echo "- date: $DATE (load started $STARTED_AT)"
        echo "- commit: $COMMIT"
        echo "- binary: $JWTGATE, built $(date -u -r "$JWTGATE" '+%Y-%m-%d %H:%M:%S UTC' 2>/dev/null || echo '?')$([[ $SKIP_BUILD == 1 ]] && echo ' (SKIP_BUILD=1: may not match the commit)')"
        echo "- nproc: $(nproc)${CPU_MODEL:+ ($CPU_MODEL)}; host CPU busy before the load: ${HOST_BUSY}%"
        echo "- pinning: $PINNING"
        echo "- store: redis-server $REDIS_VERSION (private, loopback, no persistence); upstream: $UPSTREAM_DESC"
        echo "- caches: defaults (jwt.verified_cache_entries $VERIFIED_CACHE_DEFAULT, revocation.cache.max_entries $REVOCATION_CACHE_DEFAULT, not_revoked_ttl 60s)"
        echo "- load: \`examples/soak_client.rs\`, $CONNS keep-alive connections, HS256 tokens minted on the fly, each with a fresh jti and $([[ $SUBJECTS == 0 ]] && echo "its own sub" || echo "one of $SUBJECTS subs"); 1 in $REVOKE_EVERY logged out (POST /logout) and re-sent"
        if [[ $ADMIN == 1 ]]; then
            echo "- admin listener on; /metrics during the load: $( ((SCRAPE_SECS > 0)) && echo "scraped every ${SCRAPE_SECS}s" || echo "not scraped (once after the final sample)")"
        else
            echo "- no admin listener (ADMIN=0), so no metrics recorder is installed"
        fi
        echo
        echo "## Result"
        echo
        echo "- **$SENT distinct tokens** in ${ELAPSED} s: **$TPS tokens/s** ($RPS requests/s incl. logouts and re-sends)"
        echo "- RSS: start $(mib "$RSS_START") MiB; at $FILL tokens (caches full) $(mib "$RSS_FILL") MiB; at $((2 * FILL)) $(mib "$RSS_FILL2") MiB; **end $(mib "$RSS_END") MiB**; peak (VmHWM) $(mib "$HWM_END") MiB"
        [[ -n $GROWTH_LINE ]] && echo "- growth $GROWTH_LINE"
        echo "- after the load: ${SETTLE_SECS} s idle $(mib "$IDLE_RSS") MiB$AFTER_SCRAPE; $GATE_THREADS threads, $GATE_FDS open fds"
        echo "- **verdict: $VERDICT** (growth allowed after $((2 * FILL)) tokens: ${MAX_GROWTH_PCT}%)"
        echo "- statuses $([[ $STATUS_OK == 1 ]] && echo "all as expected" || echo "**NOT all as expected**"); 5xx: $N5XX"
        echo
        echo "## RSS curve"
        echo
        echo "| tokens | elapsed s | tok/s (interval) | RSS MiB | anon MiB | |"
        echo "|---:|---:|---:|---:|---:|---|"
        rss_table md
        if [[ -n $PLOT ]]; then
            echo
            echo "![RSS curve]($(basename "$PLOT"))"
        fi
        echo
        echo "## Responses"
        echo
        echo "| kind | status | count | expected |"
        echo "|---|---:|---:|---:|"
        status_lines | awk '{ split($1, k, "="); split($2, c, "="); split($3, n, "=")
            want = (k[2] ~ /revoked$/) ? 401 : 200
            printf "| %s | %s | %s | %s |\n", k[2], c[2], n[2], want }'
        echo "| control: fresh token (curl) | $ctl_before | 1 | 200 |"
        echo "| control: $CTL_HOW | $ctl_revoke | 1 | 200 |"
        echo "| control: that token again | $ctl_after | 1 | 401 |"
        echo
        echo "\`get\`: each distinct token once; \`logout\` / \`get_revoked\`: the revoked ones, logged out then re-sent;"
        echo "\`late_*\` (after the load): the first revoked token and the first accepted one, re-sent after all the"
        echo "others had gone through the caches, and a fresh token, logged out. (\`store_hit\` below counts look-ups"
        echo "that Redis answered \"revoked\": 1 means the first revoked token's cache entry had been evicted and Redis refused it.)"
        echo
        echo "## Gate and store after the load"
        echo
        if [[ $ADMIN == 1 ]]; then
            echo "- jwtgate_revocation_checks_total: cache $CHECKS_CACHE, store_miss $CHECKS_MISS, store_hit $CHECKS_HIT"
            echo "- jwtgate_logouts_total $LOGOUTS; pub/sub messages $PUBSUB_MSGS, reconnects $PUBSUB_RECONNECTS; store errors $STORE_ERRORS"
        fi
        echo "- Redis: $REDIS_KEYS keys (the revocation records), used_memory $REDIS_MEM"
        echo
        echo "Samples: \`$(basename "$RESULTS_CSV")\` (RSS and RssAnon from /proc/<pid>/status, KiB)."
    } >"$RESULTS"
    log "wrote $RESULTS and $RESULTS_CSV${PLOT:+ and $PLOT}"
fi

[[ $STATUS_OK == 1 ]] || die "not every response had the expected status (see the table above)"
((CLIENT_RC == 0)) || die "the load client exited with $CLIENT_RC"
case $VERDICT in GROWS*) die "RSS kept growing after the caches filled (verdict: $VERDICT)" ;; esac
