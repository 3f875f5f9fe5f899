#!/usr/bin/env bash
# Runs the four fuzz targets one after another, one process each (the
# machines have two cores, shared), with the execution counts recorded in
# fuzz/README.md. Not CI: needs nightly and `cargo install cargo-fuzz`.
#   bash fuzz/run.sh [WORKDIR]   (new inputs go to WORKDIR/<target>)
# Minimize afterwards: cargo +nightly fuzz cmin -O <target> fuzz/corpus/<target>
set -euo pipefail
cd "$(dirname "$0")/.."
work="${1:-/tmp/jwtgate-fuzz}"
runs() {
    case "$1" in
        config) echo 1200000 ;;
        token) echo 3500000 ;;
        path_routes) echo 3000000 ;;
        cookie) echo 2500000 ;;
    esac
}
for target in ${TARGETS:-config token path_routes cookie}; do
    mkdir -p "$work/$target"
    cargo +nightly fuzz run -O "$target" "$work/$target" "fuzz/corpus/$target" -- \
        -dict="fuzz/dict/$target.dict" -runs="$(runs "$target")" -print_final_stats=1 \
        2>&1 | tee "$work/$target.log" | grep -E "^(#[0-9]+ +DONE|stat::|==[0-9]+==|thread)" || true
done
