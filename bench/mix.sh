#!/usr/bin/env bash
# What patients do, on the bench clinic (20 dermatologists, 90 days of 15-minute slots,
# 30% booked), SQLite then PostgreSQL, each next to /health on the same server:
# - varied availability questions (bench/mix.lua) at CONNECTIONS (32), while about 10
#   bookings a second go on, so caches are invalidated as in life; once per response
#   shape in SHAPES ("legacy days": the flat list and the day-grouped one);
# - the booking flow (a one-day lookup, then a POST of one of its openings) at 4 and 16
#   clients, each on a fresh calendar and server, the POST's latency, and the statements
#   the server sent the database per booking made (the emails it queued and sent
#   included);
# - the server's peak resident memory under the questions, and under the flows.
# Writes the figures into bench/RESULTS.md under "mix". Knobs: DURATION (15s), SHAPES.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
need_wrk
cargo build --release --quiet --bin dermabook --example bench_seed --example bench_load

seconds=${DURATION:-15s}
seconds=${seconds%s}
shapes=${SHAPES:-legacy days}
export MIX_FIRST_DAY
MIX_FIRST_DAY=$(TZ=Europe/London date -d tomorrow +%F)
table=$(mktemp)
{
    echo "## Varied questions, booking flow and memory"
    echo
    echo "Measured $(date -u +%F) on $(machine)."
    echo "\`bench/mix.sh\`: wrk -t${THREADS:-2} -c${CONNECTIONS:-32} -d${seconds}s with bench/mix.lua (a random"
    echo "start in the next 8 weeks, 1 to 7 days, 30% for one dermatologist, gzip) beside about"
    echo "10 bookings a second; the booking flow (\`bench_load flow\`) at 4 and 16 clients, each on a"
    echo "fresh calendar and server; peak RSS of the server (VmHWM). Default configuration, rate limits off."
    echo
    echo "| database | workload | req/s | p50 ms | p99 ms | share of /health |"
    echo "|---|---|---:|---:|---:|---:|"
} >"$table"

trap stop_server EXIT
port=18281
for backend in sqlite postgres; do
    url=$(fresh_database "$backend" dermabook_mix)
    ./target/release/examples/bench_seed "$url"
    start_server "$url" "$port"
    base="http://127.0.0.1:$port"
    read -r h_rps h_p50 h_p99 < <(wrk_run "$base/health")
    echo "| $backend | /health | $h_rps | $h_p50 | $h_p99 | |" >>"$table"
    share() { python3 -c "print(f'{100*$1/$h_rps:.1f}%')"; }
    for shape in $shapes; do
        case $shape in
            legacy) export MIX_PATH=/api/v1/availability ;;
            days) export MIX_PATH=/api/v1/availability/days ;;
        esac
        steady=$(mktemp)
        ./target/release/examples/bench_load steady "$base" 10 "$seconds" >"$steady" &
        writer=$!
        read -r m_rps m_p50 m_p99 < <(wrk_run "$base/health" -s bench/mix.lua)
        wait "$writer"
        echo "| $backend | varied availability, $shape shape, beside $(cat "$steady") bookings/s | $m_rps | $m_p50 | $m_p99 | $(share "$m_rps") |" >>"$table"
    done
    mix_rss=$(awk '/VmHWM/ {printf "%.0f", $2 / 1024}' "/proc/$SERVER_PID/status")
    booked='dermabook_booking_operations_total.*operation="book".*outcome="done"'
    flow_rss=0
    for clients in 4 16; do
        # Each flow on a fresh calendar and server: a flow books hundreds a second, so
        # the one before would leave the next one hunting for the few openings left.
        stop_server
        url=$(fresh_database "$backend" dermabook_mix)
        ./target/release/examples/bench_seed "$url"
        start_server "$url" "$port"
        statements_before=$(metric_sum "$base" '^dermabook_db_statements_total')
        booked_before=$(metric_sum "$base" "$booked")
        read -r b_rps b_p50 b_p99 < <(./target/release/examples/bench_load flow "$base" "$clients" "$seconds")
        statements=$(($(metric_sum "$base" '^dermabook_db_statements_total') - statements_before))
        bookings=$(($(metric_sum "$base" "$booked") - booked_before))
        per_booking=$(python3 -c "print(f'{$statements / max(1, $bookings):.1f}')")
        echo "| $backend | booking flow, $clients clients (bookings/s; POST latency; $per_booking statements per booking) | $b_rps | $b_p50 | $b_p99 | |" >>"$table"
        rss=$(awk '/VmHWM/ {printf "%.0f", $2 / 1024}' "/proc/$SERVER_PID/status")
        flow_rss=$((rss > flow_rss ? rss : flow_rss))
    done
    echo "| $backend | peak RSS: $mix_rss MB after the varied questions, $flow_rss MB in the flows | | | | |" >>"$table"
    stop_server
    port=$((port + 1))
done
cat "$table"
write_section "${SECTION:-mix}" "$table"
