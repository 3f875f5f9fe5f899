#!/usr/bin/env bash
# The whole test suite, on a fresh Debian machine with Rust: installs
# redis-server when missing (tests spawn their own on free loopback ports),
# then runs every unit and integration test. Tests that need Redis fail,
# never skip, when it is absent.
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

cargo test --all-targets --locked "$@"
