#!/usr/bin/env bash
# Contention torture: two instances started at the same moment on one fresh PostgreSQL
# database, then ROUNDS rounds of 64 concurrent bookings of overlapping times of
# different lengths (30, 60 and 75 minutes with buffers), each round racing changes of
# earlier bookings as well: the patient's cancel against the desk's confirm, and two
# reschedules of one booking at once. Prints attempts a second, the answers by kind, the
# 5xx (must be 0) and the overlap query (must be 0), and writes them into
# bench/RESULTS.md. Knob: ROUNDS (1000). BACKEND=sqlite runs it on one SQLite file.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
cargo build --release --quiet --bin dermabook --example bench_contention
backend=${BACKEND:-postgres}
url=$(fresh_database "$backend" dermabook_contention)
log=$(mktemp)
mail=$(mktemp -d)
serve_on() {
    env DERMABOOK__DATABASE__URL="$url" DERMABOOK__SERVER__BIND="127.0.0.1:$1" \
        DERMABOOK__LOG__FILTER=warn DERMABOOK__EMAIL__FILE_DIR="$mail" \
        DERMABOOK__DATABASE__POOL_SIZE=8 ./target/release/dermabook serve --demo >>"$log" 2>&1 &
}
# Both instances at once on the empty database: migrations and seeding must not collide.
serve_on 18291
pid_a=$!
serve_on 18292
pid_b=$!
trap 'kill -TERM $pid_a $pid_b 2>/dev/null || true' EXIT
for port in 18291 18292; do
    for _ in $(seq 1 400); do
        curl -sf "http://127.0.0.1:$port/health" >/dev/null && break
        kill -0 $pid_a $pid_b 2>/dev/null || { cat "$log" >&2; echo "an instance died at start" >&2; exit 1; }
        sleep 0.05
    done
done
out=$(mktemp)
./target/release/examples/bench_contention "$url" http://127.0.0.1:18291 http://127.0.0.1:18292 "${ROUNDS:-1000}" | tee "$out"
section=$(mktemp)
{
    echo "## Contention ($backend)"
    echo
    echo "Measured $(date -u +%F) on $(machine)."
    echo "\`bench/contention.sh\`: two instances started together on one fresh $backend database; each round"
    echo "sends 64 bookings of overlapping times (consultation 30 min, mesotherapy 45+15, laser 60+15) at one"
    echo "dermatologist's two-hour window, split over both instances, together with racing changes of up to 8"
    echo "earlier bookings (the patient's cancel against the desk's confirm; two reschedules of one booking)."
    echo
    sed 's/^/- /' "$out"
} >"$section"
write_section "contention-$backend" "$section"
