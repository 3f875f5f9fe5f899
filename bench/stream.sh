#!/usr/bin/env bash
# Memory while streaming: jwtgate's RSS over a 50 MB upload and a 50 MB
# download (issue 12: growth <= 1 MiB). Bodies stream both ways, so the
# gate should hold no more than a few buffers of either. nginx is the
# upstream: it discards the upload (`return 200`) and serves the download
# from a file. The config is the production-like one of bench/run.sh
# (Redis store, admin listener with the metrics recorder, access log off).
#
#   bench/stream.sh                 # 50 MB each way, 3 times (~10 s)
#   MB=200 REPEAT=1 bench/stream.sh
#
# The peak is VmHWM, reset (clear_refs 5) after a warm-up request, so it
# is the peak over the transfers alone; RSS after is VmRSS once they end.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
MB=${MB:-50}
REPEAT=${REPEAT:-3}
JWTGATE=${JWTGATE:-target/release/jwtgate}
TOKEN_BIN=${TOKEN_BIN:-target/release/examples/bench_token}
SKIP_BUILD=${SKIP_BUILD:-0}

log() { printf '[stream] %s\n' "$*" >&2; }
die() { printf '[stream] error: %s\n' "$*" >&2; exit 1; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/jwtgate-stream.XXXXXX")
PIDS=()
cleanup() {
    local pid
    for pid in ${PIDS[@]+"${PIDS[@]}"}; do kill "$pid" 2>/dev/null || true; done
    for pid in ${PIDS[@]+"${PIDS[@]}"}; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$TMP"
}
trap cleanup EXIT

for tool in nginx redis-server curl python3; do
    command -v "$tool" >/dev/null || die "$tool is required"
done
if [[ $SKIP_BUILD != 1 ]]; then
    cargo build --release --bin jwtgate --example bench_token >&2
fi
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
kib() { awk -v f="$2" '$1 == f":" { print $2 }' "/proc/$1/status"; }
mib() { awk -v k="$1" 'BEGIN { printf "%.2f", k / 1024 }'; }

# ---------------------------------------------------------------- upstream, redis
UP_PORT=$(free_port)
mkdir -p "$TMP/up/www"
head -c "$((MB * 1024 * 1024))" /dev/urandom >"$TMP/up/www/big"
head -c "$((MB * 1024 * 1024))" /dev/urandom >"$TMP/upload.bin"
cat >"$TMP/up/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
pid $TMP/up/nginx.pid;
error_log $TMP/up/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $TMP/up/body;
    proxy_temp_path $TMP/up/proxy;
    fastcgi_temp_path $TMP/up/fastcgi;
    uwsgi_temp_path $TMP/up/uwsgi;
    scgi_temp_path $TMP/up/scgi;
    client_max_body_size 0;
    server {
        listen 127.0.0.1:$UP_PORT;
        root $TMP/up/www;
        location = /api/up { return 200 "ok\n"; }
        location /api/ { alias $TMP/up/www/; }
    }
}
EOF
nginx -p "$TMP/up/" -c "$TMP/up/nginx.conf" -e "$TMP/up/error.log" >"$TMP/up.out" 2>&1 &
PIDS+=($!)
REDIS_PORT=$(free_port)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no >"$TMP/redis.out" 2>&1 &
PIDS+=($!)
for ((i = 0; i < 100; i++)); do
    [[ $(redis-cli -p "$REDIS_PORT" ping 2>/dev/null) == PONG ]] && curl -s -o /dev/null "http://127.0.0.1:$UP_PORT/api/up" && break
    sleep 0.1
done

# ---------------------------------------------------------------- gate
SECRET_FILE="$TMP/hs256.secret"
(umask 077 && head -c 48 /dev/urandom | base64 | tr -d '\n' >"$SECRET_FILE")
TOKEN=$("$TOKEN_BIN" --alg HS256 --secret-file "$SECRET_FILE" --iss bench --aud bench-api --kid k1 --ttl-secs 3600)
export JWTGATE_ADMIN_TOKEN="stream-admin-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')"
cat >"$TMP/gate.yaml" <<EOF
listen: 127.0.0.1:0
upstream: { url: "http://127.0.0.1:$UP_PORT" }
jwt:
  issuers:
    - { issuer: bench, audiences: [bench-api], algorithms: [HS256], keys: [{ kid: k1, secret_file: "$SECRET_FILE" }] }
revocation: { store: redis, redis: { url: "redis://127.0.0.1:$REDIS_PORT/0" } }
admin: { listen: 127.0.0.1:0, token_env: JWTGATE_ADMIN_TOKEN }
access_log: false
EOF
"$JWTGATE" run -c "$TMP/gate.yaml" >"$TMP/gate.out" 2>"$TMP/gate.err" &
GATE_PID=$!
PIDS+=("$GATE_PID")
for ((i = 0; i < 100; i++)); do
    URL=$(grep -m1 -oE "^jwtgate listening on http://[0-9.]+:[0-9]+" "$TMP/gate.out" 2>/dev/null | grep -oE 'http://.*' || true)
    [[ -n $URL ]] && break
    sleep 0.1
done
[[ -n $URL ]] || die "jwtgate did not start: $(tail -n 5 "$TMP/gate.err")"
AUTH=(-H "Authorization: Bearer $TOKEN")
[[ $(curl -s -o /dev/null -w '%{http_code}' "${AUTH[@]}" "$URL/api/up") == 200 ]] || die "warm-up request failed"

# ---------------------------------------------------------------- transfers
idle=$(kib "$GATE_PID" VmRSS)
echo 5 >"/proc/$GATE_PID/clear_refs" # VmHWM := VmRSS
want=$(sha256sum <"$TMP/up/www/big" | cut -d' ' -f1)
for ((r = 1; r <= REPEAT; r++)); do
    up=$(curl -s -o /dev/null -w '%{http_code} %{size_upload}' "${AUTH[@]}" --data-binary "@$TMP/upload.bin" \
        -H 'Content-Type: application/octet-stream' "$URL/api/up")
    [[ $up == "200 $((MB * 1024 * 1024))" ]] || die "upload $r: $up"
    got=$(curl -s "${AUTH[@]}" "$URL/api/big" | sha256sum | cut -d' ' -f1)
    [[ $got == "$want" ]] || die "download $r: body differs from the upstream's file"
    log "round $r: ${MB} MB up, ${MB} MB down; RSS $(mib "$(kib "$GATE_PID" VmRSS)") MiB, peak $(mib "$(kib "$GATE_PID" VmHWM)") MiB"
done
after=$(kib "$GATE_PID" VmRSS)
peak=$(kib "$GATE_PID" VmHWM)
commit=$(git rev-parse -q --short HEAD 2>/dev/null || echo none)
echo "jwtgate $commit: $REPEAT x ($MB MB upload + $MB MB download), Redis store, admin on"
echo "RSS idle $(mib "$idle") MiB; peak during the transfers $(mib "$peak") MiB (+$(mib $((peak - idle))) MiB); after $(mib "$after") MiB (+$(mib $((after - idle))) MiB)"
