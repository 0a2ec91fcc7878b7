#!/usr/bin/env bash
# Start-up: how long `serve` takes, on an existing database of the bench clinic (20
# dermatologists, 90 days of 15-minute slots, 30% booked) whose slot horizon is current,
# from launch to `/ready` answering 200. Usage: bench/startup.sh [sqlite|postgres]
# (default sqlite). Prints one line per run; the first run also opens the database cold.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
backend=${1:-sqlite}
cargo build --release --quiet --bin dermabook --example bench_seed
url=$(fresh_database "$backend" dermabook_startup)
work=$(mktemp -d)
trap 'pkill -f "127.0.0.1:18510" 2>/dev/null || true; rm -rf "$work"; case $url in sqlite://*) rm -rf "$(dirname "${url#sqlite://}")" ;; esac' EXIT
./target/release/examples/bench_seed "$url" >/dev/null
for run in 1 2 3 4 5; do
    start=$(date +%s%N)
    DERMABOOK__DATABASE__URL="$url" DERMABOOK__SERVER__BIND=127.0.0.1:18510 \
        DERMABOOK__EMAIL__FILE_DIR="$work/mail" DERMABOOK__LOG__FILTER=warn \
        ./target/release/dermabook serve >/dev/null 2>&1 &
    server=$!
    ready=
    for _ in $(seq 1 2000); do
        if curl -sf http://127.0.0.1:18510/ready >/dev/null; then ready=1; break; fi
        sleep 0.005
    done
    if [ -z "$ready" ]; then echo "the server did not become ready" >&2; exit 1; fi
    echo "$backend run $run: ready in $(( ($(date +%s%N) - start) / 1000000 )) ms"
    kill "$server"
    wait "$server" || true
done
