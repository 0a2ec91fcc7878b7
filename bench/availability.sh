#!/usr/bin/env bash
# Availability search under load: a clinic of 20 dermatologists with 90 days of 15-minute
# slots, 30% booked; wrk asks for one treatment across all dermatologists for 7 days, and
# for /health on the same server as the ceiling. SQLite, then PostgreSQL. Writes the
# figures into bench/RESULTS.md. Knobs: DURATION (15s), CONNECTIONS (32), THREADS (2).
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
    echo "wrk -t${THREADS:-2} -c${CONNECTIONS:-32} -d${DURATION:-15s}, on the same machine as the server."
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
    echo "$backend: the search finds $openings openings"
    read -r h_rps h_p50 h_p99 < <(wrk_run "http://127.0.0.1:$port/health")
    read -r a_rps a_p50 a_p99 < <(wrk_run "http://127.0.0.1:$port$search")
    stop_server
    share=$(python3 -c "print(f'{100*$a_rps/$h_rps:.0f}%')")
    echo "| $backend | /health | $h_rps | $h_p50 | $h_p99 | |" >>"$table"
    echo "| $backend | availability ($openings openings) | $a_rps | $a_p50 | $a_p99 | $share |" >>"$table"
    port=$((port + 1))
done
cat "$table"
write_section availability "$table"
