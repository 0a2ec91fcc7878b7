# Shared by the benchmark scripts: tools, databases, a server to measure, wrk parsing,
# and writing a section of bench/RESULTS.md.

PG_SERVER_URL=${DERMABOOK_BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}

need_wrk() {
    if ! command -v wrk >/dev/null; then
        echo "installing wrk from Debian" >&2
        if [ "$(id -u)" = 0 ]; then apt-get install -y wrk >/dev/null; else sudo apt-get install -y wrk >/dev/null; fi
    fi
}

need_postgres() {
    if ! pg_isready -h 127.0.0.1 -p 5432 -q; then
        pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start
    fi
}

# fresh_database BACKEND NAME -> prints a database URL for an empty database
fresh_database() {
    case "$1" in
        sqlite)
            local dir
            dir=$(mktemp -d)
            echo "sqlite://$dir/$2.db"
            ;;
        postgres)
            need_postgres
            psql "$PG_SERVER_URL" -q -c "DROP DATABASE IF EXISTS $2 WITH (FORCE)" -c "CREATE DATABASE $2" >/dev/null
            echo "${PG_SERVER_URL%/*}/$2"
            ;;
    esac
}

# Every benchmark runs from one address, so the per-address limits are off; a PostgreSQL
# server needs a manage-link secret, shared by every instance of one run.
BENCH_SECRET=${BENCH_SECRET:-$(head -c 32 /dev/urandom | base64 | tr -d '=+/')}
export DERMABOOK__RATE_LIMIT__ENABLED=false
export DERMABOOK__AUTH__MANAGE_LINK_SECRET="bench-$BENCH_SECRET"
export DERMABOOK__METRICS__TOKEN="metrics-$BENCH_SECRET"

# metric_sum BASE_URL PATTERN -> the sum of every series of /metrics whose line matches
# PATTERN (an awk regular expression), 0 when none does
metric_sum() {
    curl -sf -H "Authorization: Bearer $DERMABOOK__METRICS__TOKEN" "$1/metrics" |
        awk -v pattern="$2" '$0 !~ /^#/ && $0 ~ pattern { sum += $NF } END { printf "%d\n", sum }'
}

# start_server DATABASE_URL PORT [VAR=VALUE...]: serves in the background, waits for /health
start_server() {
    local url=$1 port=$2
    shift 2
    env DERMABOOK__DATABASE__URL="$url" \
        DERMABOOK__SERVER__BIND="127.0.0.1:$port" \
        DERMABOOK__LOG__FILTER=warn \
        DERMABOOK__EMAIL__FILE_DIR="$(mktemp -d)" \
        DERMABOOK__DATABASE__POOL_SIZE=8 \
        "$@" \
        ./target/release/dermabook serve >/dev/null 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 1 200); do
        if curl -sf "http://127.0.0.1:$port/health" >/dev/null; then return 0; fi
        sleep 0.05
    done
    echo "the server did not start" >&2
    return 1
}

stop_server() {
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
}

# wrk_run URL [WRK OPTIONS...] -> prints "req_per_sec p50_ms p99_ms"
wrk_run() {
    local url=$1
    shift
    wrk -t"${THREADS:-2}" -c"${CONNECTIONS:-32}" -d"${DURATION:-15s}" --latency \
        -H "Accept-Encoding: gzip" "$@" "$url" | python3 -c '
import re, sys
out = sys.stdin.read()
def ms(v):
    n, unit = re.match(r"([\d.]+)(us|ms|s)", v).groups()
    return float(n) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
p50 = ms(re.search(r"\s50%\s+(\S+)", out).group(1))
p99 = ms(re.search(r"\s99%\s+(\S+)", out).group(1))
errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
if errors:
    sys.exit("wrk saw %s error responses" % errors.group(1))
print("%.0f %.2f %.2f" % (rps, p50, p99))
'
}

machine() {
    local cpu
    cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')
    echo "$(nproc) cores ($cpu), $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -sr), $(rustc --version | cut -d' ' -f1-2), PostgreSQL $(psql --version | awk '{print $3}'), wrk $(wrk -v 2>&1 | head -1 | awk '{print $2}')"
}

# write_section NAME FILE: replaces the NAME section of bench/RESULTS.md with FILE
write_section() {
    python3 - "$1" "$2" <<'PY'
import sys, pathlib
name, body = sys.argv[1], pathlib.Path(sys.argv[2]).read_text()
path = pathlib.Path("bench/RESULTS.md")
text = path.read_text() if path.exists() else "# Benchmark results\n"
start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
block = f"{start}\n{body.rstrip()}\n{end}"
if start in text:
    before, rest = text.split(start, 1)
    text = before + block + rest.split(end, 1)[1]
else:
    text = text.rstrip() + "\n\n" + block + "\n"
path.write_text(text)
PY
}
