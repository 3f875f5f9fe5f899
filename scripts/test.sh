#!/usr/bin/env bash
# The whole test suite, on a fresh Debian machine with Rust: installs
# redis-server (apt; tests spawn their own on free loopback ports) and the
# gRPC forward-auth test's Python client modules, grpcio and xds-protos
# (pip), when missing, then runs every unit and integration test. Tests
# that need one fail, never skip, when it is absent.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v redis-server >/dev/null 2>&1; then
  echo "test.sh: installing redis-server (apt-get)" >&2
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server >/dev/null
  # The package starts a system instance on 6379; the tests never use it.
fi
redis-server --version
# tests/grpc/check.py: an Envoy ext_authz client that shares no code with
# jwtgate. Debian's own python3 refuses a plain pip install (PEP 668).
if ! python3 -c 'import grpc, envoy.service.auth.v3.external_auth_pb2_grpc' >/dev/null 2>&1; then
  echo "test.sh: installing grpcio xds-protos (pip)" >&2
  if ! python3 -m pip --version >/dev/null 2>&1; then
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-pip >/dev/null
  fi
  python3 -m pip install -q grpcio xds-protos 2>/dev/null ||
    python3 -m pip install -q --break-system-packages grpcio xds-protos
fi
python3 -c 'import grpc, envoy.service.auth.v3.external_auth_pb2_grpc; print("grpcio", grpc.__version__)'

cargo test --all-targets --locked "$@"
