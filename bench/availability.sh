#!/usr/bin/env bash
# Availability search under load: a clinic of 20 dermatologists with 90 days of 15-minute
# slots, 30% booked; wrk asks for one treatment across all dermatologists for 7 days, and
# for /health on the same server as the ceiling. SQLite, then PostgreSQL; each with the
# answers kept (the default) and not kept, so the cost of a search over the index shows.
# Requests say `Accept-Encoding: gzip`, as browsers do. Writes the figures into
# bench/RESULTS.md. Knobs: DURATION (15s), CONNECTIONS (32), THREADS (2).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
need_wrk
cargo build --release --quiet --bin dermabook --example bench_seed

from=$(TZ=Europe/London date -d tomorrow +%F)
to=$(TZ=Europe/London date -d "tomorrow + 6 days" +%F)
search="/api/v1/availability?treatment=initial-consultation&from=$from&to=$to"
table=$(mktemp)
{
    echo "## Availability search"
    echo
    echo "Measured $(date -u +%F) on $(machine)."
    echo "wrk -t${THREADS:-2} -c${CONNECTIONS:-32} -d${DURATION:-15s} -H 'Accept-Encoding: gzip', on the same machine as the server."
    echo "Search: \`GET $search\` (7 days, 20 dermatologists)."
    echo
    echo "| database | endpoint | req/s | p50 ms | p99 ms | share of /health |"
    echo "|---|---|---:|---:|---:|---:|"
} >"$table"

port=18181
for backend in sqlite postgres; do
    url=$(fresh_database "$backend" dermabook_bench)
    ./target/release/examples/bench_seed "$url"
    start_server "$url" "$port" DERMABOOK__DEMO__SEED_ON_START=false
    openings=$(curl -sf "http://127.0.0.1:$port$search" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["slots"]))')
    size=$(curl -sf "http://127.0.0.1:$port$search" | wc -c)
    gz=$(curl -sf -H "Accept-Encoding: gzip" "http://127.0.0.1:$port$search" | wc -c)
    echo "$backend: the search finds $openings openings ($size bytes, $gz gzipped)"
    read -r h_rps h_p50 h_p99 < <(wrk_run "http://127.0.0.1:$port/health")
    read -r a_rps a_p50 a_p99 < <(wrk_run "http://127.0.0.1:$port$search")
    stop_server
    start_server "$url" "$port" DERMABOOK__DEMO__SEED_ON_START=false DERMABOOK__BOOKING__AVAILABILITY_CACHE_BYTES=0
    read -r u_rps u_p50 u_p99 < <(wrk_run "http://127.0.0.1:$port$search")
    stop_server
    share() { python3 -c "print(f'{100*$1/$h_rps:.1f}%')"; }
    echo "| $backend | /health | $h_rps | $h_p50 | $h_p99 | |" >>"$table"
    echo "| $backend | availability, answers kept ($openings openings, $gz bytes gzipped) | $a_rps | $a_p50 | $a_p99 | $(share "$a_rps") |" >>"$table"
    echo "| $backend | availability, answers not kept | $u_rps | $u_p50 | $u_p99 | $(share "$u_rps") |" >>"$table"
    port=$((port + 1))
done
cat "$table"
write_section availability "$table"
