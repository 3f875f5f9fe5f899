#!/usr/bin/env bash
# Creates the files the base kustomization's secretGenerator turns into the
# Secret `jwtgate-secrets` (keys jwt-secret and admin-token: the sidecar
# contract, docs/sidecar-contract.md). They are git-ignored; without them
# `kubectl apply -k` fails with "no such file or directory" instead of
# deploying a made-up secret.
#
#   bash scripts/gen-secrets.sh                    # into k8s/base/secrets/
#   JWT_SECRET_FILE=app-hs256.key bash scripts/gen-secrets.sh
#   bash scripts/gen-secrets.sh /tmp/some/dir      # elsewhere (CI checks)
#
# jwt-secret: the HS256 key your tokens are signed with. Pass the app's own
# with JWT_SECRET_FILE; otherwise a random 32-byte one is made (fine for a
# try-out, but then only tokens signed with it are accepted).
# admin-token: a random admin API bearer token (32 bytes, hex).
# Existing files are kept (re-running never rotates a secret by accident);
# FORCE=1 replaces them.
set -euo pipefail
# Relative paths (the directory argument, JWT_SECRET_FILE) are taken from
# where the script is run.
absolute() { case $1 in "" | /*) printf '%s' "$1" ;; *) printf '%s/%s' "$PWD" "$1" ;; esac; }
dir=$(absolute "${1:-}")
JWT_SECRET_FILE=$(absolute "${JWT_SECRET_FILE:-}")
cd "$(dirname "$0")/.."
dir=${dir:-k8s/base/secrets}
mkdir -p "$dir"
chmod 700 "$dir"
umask 077

# random_hex BYTES: hex of BYTES random bytes, no trailing newline.
random_hex() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }

write() { # write NAME CONTENT-PRODUCING-COMMAND...
  local name=$1 path=$dir/$1
  shift
  if [ -e "$path" ] && [ "${FORCE:-0}" != 1 ]; then
    echo "gen-secrets: $path exists, kept (FORCE=1 replaces it)"
    return
  fi
  "$@" >"$path.tmp"
  [ -s "$path.tmp" ] || { rm -f "$path.tmp"; echo "gen-secrets: FAIL: $name came out empty" >&2; exit 1; }
  mv "$path.tmp" "$path"
  echo "gen-secrets: wrote $path"
}

if [ -n "${JWT_SECRET_FILE:-}" ]; then
  [ -s "$JWT_SECRET_FILE" ] || { echo "gen-secrets: FAIL: JWT_SECRET_FILE=$JWT_SECRET_FILE is missing or empty" >&2; exit 1; }
  write jwt-secret cat "$JWT_SECRET_FILE"
else
  write jwt-secret random_hex 32
fi
write admin-token random_hex 32
