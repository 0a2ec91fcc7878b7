#!/usr/bin/env bash
# Outbox benchmark: messages a second from the outbox to an SMTP server on loopback (one
# worker, then two), and what rendering and queueing a booking's emails adds to a
# booking. SQLite, then PostgreSQL. Writes the figures into bench/RESULTS.md.
# Knob: MESSAGES (3000).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
cargo build --release --quiet --example bench_outbox
section=$(mktemp)
{
    echo "## Outbox"
    echo
    echo "Measured $(date -u +%F) on $(machine)."
    echo "A confirmation with its calendar invitation, copied ${MESSAGES:-3000} times into the outbox, sent to an"
    echo "SMTP server on loopback (mailin-embedded, accepting everything). Bookings are 400 consultations"
    echo "through the booking rules, each in its own write transaction."
    echo
} >"$section"
for backend in sqlite postgres; do
    url=$(fresh_database "$backend" dermabook_bench_outbox)
    echo "### $backend" >>"$section"
    echo >>"$section"
    ./target/release/examples/bench_outbox "$url" "${MESSAGES:-3000}" | sed 's/^/- /' | tee -a "$section"
    echo >>"$section"
done
write_section outbox "$section"
