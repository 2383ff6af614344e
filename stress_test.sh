#!/usr/bin/env bash
# Stress test of a running lb: httperf (new connection per request, fixed rate), then
# wrk (keep-alive, as fast as it goes), then a short summary of both.
# Start the balancer first, e.g. ./setup.sh in another terminal.  ./stress_test.sh --help
set -euo pipefail

usage() {
    cat <<'TXT'
Usage: ./stress_test.sh [options]

Load-tests a balancer that is already running (default 127.0.0.1:8080, as started by
./setup.sh). Runs httperf, then wrk, against the same host, port and URI, then prints
requests/s, latency p50/p99 and errors for each tool. Only the given host is contacted.

Options (each also settable through the environment variable shown):
  --host HOST          target host (STRESS_HOST, default 127.0.0.1)
  --port PORT          target port (STRESS_PORT, default 8080)
  --uri URI            request path (STRESS_URI, default /100: pi to 100 places)
httperf: one request per connection, opened at a fixed rate
  --num-conns N        connections to open (STRESS_NUM_CONNS, default 100)
  --rate R             new connections per second (STRESS_RATE, default 5)
  --num-calls N        requests per connection (STRESS_NUM_CALLS, default 1)
  --timeout SEC        httperf per-request timeout (STRESS_TIMEOUT, default 5)
wrk: keep-alive connections, as many requests as they can carry
  --connections N      open connections (STRESS_CONNECTIONS, default 50)
  --duration DUR       length of the run, e.g. 10s, 1m (STRESS_DURATION, default 10s)
  --threads N          wrk threads (STRESS_THREADS, default 2)
Other
  --skip-httperf       run wrk only
  --skip-wrk           run httperf only
  -q, --quiet          print only the summary, not the tools' own output
  -h, --help           this help

The classic run is: httperf --server=localhost --port=8080 --uri=/100 --num-conns=100 --rate=5
(the defaults above). A heavier one: ./stress_test.sh --num-conns 20000 --rate 2000 --connections 200.
httperf's latency is its connection lifetime (connect, request, whole reply) in 1 ms bins;
httperf uses select(), so it cannot hold more than about 1000 connections open at once.
Exit status: 0 when both runs finished without errors, 1 on errors or a missing tool, 2 on a
bad flag.
TXT
}

die_usage() {
    echo "stress_test.sh: $*" >&2
    echo "Try ./stress_test.sh --help" >&2
    exit 2
}

host=${STRESS_HOST:-127.0.0.1}
port=${STRESS_PORT:-8080}
uri=${STRESS_URI:-/100}
num_conns=${STRESS_NUM_CONNS:-100}
rate=${STRESS_RATE:-5}
num_calls=${STRESS_NUM_CALLS:-1}
timeout=${STRESS_TIMEOUT:-5}
connections=${STRESS_CONNECTIONS:-50}
duration=${STRESS_DURATION:-10s}
threads=${STRESS_THREADS:-2}
run_httperf=1
run_wrk=1
quiet=0

need_arg() { [[ $# -ge 2 && -n $2 ]] || die_usage "$1 needs a value"; }
while [[ $# -gt 0 ]]; do
    case $1 in
        --host) need_arg "$@"; host=$2; shift 2 ;;
        --port) need_arg "$@"; port=$2; shift 2 ;;
        --uri) need_arg "$@"; uri=$2; shift 2 ;;
        --num-conns) need_arg "$@"; num_conns=$2; shift 2 ;;
        --rate) need_arg "$@"; rate=$2; shift 2 ;;
        --num-calls) need_arg "$@"; num_calls=$2; shift 2 ;;
        --timeout) need_arg "$@"; timeout=$2; shift 2 ;;
        --connections) need_arg "$@"; connections=$2; shift 2 ;;
        --duration) need_arg "$@"; duration=$2; shift 2 ;;
        --threads) need_arg "$@"; threads=$2; shift 2 ;;
        --host=* | --port=* | --uri=* | --num-conns=* | --rate=* | --num-calls=* | --timeout=* | \
            --connections=* | --duration=* | --threads=*)
            set -- "${1%%=*}" "${1#*=}" "${@:2}" ;;
        --skip-httperf) run_httperf=0; shift ;;
        --skip-wrk) run_wrk=0; shift ;;
        -q | --quiet) quiet=1; shift ;;
        -h | --help) usage; exit 0 ;;
        *) die_usage "unknown option: $1" ;;
    esac
done

# A whole number above zero (and below `max`, when given).
positive() { [[ $1 =~ ^[0-9]+$ ]] && ((10#$1 > 0 && 10#$1 < ${2:-2147483648})); }
positive "$port" 65536 || die_usage "bad --port: $port"
positive "$num_conns" || die_usage "bad --num-conns: $num_conns"
[[ $rate =~ ^[0-9]+(\.[0-9]+)?$ ]] || die_usage "bad --rate: $rate"
positive "$num_calls" || die_usage "bad --num-calls: $num_calls"
[[ $timeout =~ ^[0-9]+(\.[0-9]+)?$ ]] || die_usage "bad --timeout: $timeout"
positive "$connections" || die_usage "bad --connections: $connections"
positive "$threads" || die_usage "bad --threads: $threads"
[[ $duration =~ ^[0-9]+[smh]?$ ]] || die_usage "bad --duration: $duration (e.g. 10s, 1m)"
[[ $uri == /* ]] || die_usage "--uri must start with /: $uri"
[[ -n $host && $host != *[[:space:]/]* ]] || die_usage "bad --host: $host"
((threads <= connections)) || threads=$connections
((run_httperf || run_wrk)) || die_usage "--skip-httperf and --skip-wrk leave nothing to run"

missing=()
((run_httperf)) && ! command -v httperf >/dev/null && missing+=(httperf)
((run_wrk)) && ! command -v wrk >/dev/null && missing+=(wrk)
if ((${#missing[@]})); then
    echo "stress_test.sh: not installed: ${missing[*]}" >&2
    echo "  Debian/Ubuntu: sudo apt-get install ${missing[*]}" >&2
    exit 1
fi

# Is anything listening there? bash's /dev/tcp connects once and closes.
if ! (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; then
    echo "stress_test.sh: nothing accepts connections on $host:$port." >&2
    echo "  Start the balancer first, e.g. ./setup.sh (lb on 127.0.0.1:8080), or pass --host/--port." >&2
    exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

show() {
    if ((!quiet)); then
        sed 's/^/    /' "$1"
    fi
}

# Summary rows: tool, requests/s, p50 ms, p99 ms, errors.
rows=()
status=0

if ((run_httperf)); then
    echo "== httperf: $num_conns connections at $rate/s, $num_calls request(s) each, GET $uri on $host:$port"
    # -v -v adds the connection lifetime histogram we take percentiles from.
    if ! httperf -v -v --server="$host" --port="$port" --uri="$uri" \
        --num-conns="$num_conns" --rate="$rate" --num-calls="$num_calls" \
        --timeout="$timeout" >"$tmp/httperf.out" 2>"$tmp/httperf.err"; then
        cat "$tmp/httperf.err" >&2
        echo "stress_test.sh: httperf failed" >&2
        status=1
    fi
    grep -v 'open file limit > FD_SETSIZE' "$tmp/httperf.err" >&2 || true
    show "$tmp/httperf.out"
    # Request rate, histogram percentiles, errors and replies that were not 2xx/3xx.
    row=$(awk '
        /^Connection lifetime histogram/ { inhist = 1; next }
        inhist && NF == 0 { inhist = 0 }
        inhist && NF == 2 && $1 ~ /^[0-9.]+$/ { n++; ms[n] = $1; cnt[n] = $2; total += $2 }
        /^Request rate:/ { rps = $3 }
        /^Reply status:/ {
            for (i = 3; i <= NF; i++) { split($i, kv, "="); if (kv[1] == "1xx" || kv[1] == "4xx" || kv[1] == "5xx") bad += kv[2] }
        }
        /^Errors: total/ { errs = $3 }
        function pct(p,   i, acc) {
            if (total == 0) return "-"
            acc = 0
            for (i = 1; i <= n; i++) { acc += cnt[i]; if (acc >= p * total) return sprintf("%.1f", ms[i]) }
            return sprintf("%.1f", ms[n])
        }
        END {
            if (rps == "") rps = "-"
            printf "httperf|%s|%s|%s|%d\n", rps, pct(0.50), pct(0.99), errs + bad
        }' "$tmp/httperf.out")
    rows+=("$row")
    echo
fi

if ((run_wrk)); then
    echo "== wrk: $threads thread(s), $connections keep-alive connections for $duration, GET $uri on $host:$port"
    url="http://$host:$port$uri"
    [[ $host == *:* ]] && url="http://[$host]:$port$uri"
    if ! wrk -t"$threads" -c"$connections" -d"$duration" --latency "$url" >"$tmp/wrk.out" 2>&1; then
        cat "$tmp/wrk.out" >&2
        echo "stress_test.sh: wrk failed" >&2
        status=1
    else
        show "$tmp/wrk.out"
    fi
    row=$(awk '
        function ms(v) {
            if (v ~ /us$/) return v / 1000
            if (v ~ /ms$/) return v + 0
            if (v ~ /m$/) return v * 60000
            if (v ~ /s$/) return v * 1000
            return v
        }
        /^Requests\/sec:/ { rps = $2 }
        $1 == "50%" { p50 = sprintf("%.2f", ms($2)) }
        $1 == "99%" { p99 = sprintf("%.2f", ms($2)) }
        /Socket errors:/ { gsub(/,/, ""); errs += $4 + $6 + $8 + $10 }
        /Non-2xx or 3xx responses:/ { errs += $NF }
        END {
            if (rps == "") rps = "-"; if (p50 == "") p50 = "-"; if (p99 == "") p99 = "-"
            printf "wrk|%s|%s|%s|%d\n", rps, p50, p99, errs
        }' "$tmp/wrk.out")
    rows+=("$row")
    echo
fi

echo "== summary: GET $uri on $host:$port"
printf '%-8s %12s %10s %10s %8s\n' tool "requests/s" "p50 ms" "p99 ms" errors
for row in "${rows[@]}"; do
    IFS='|' read -r tool rps p50 p99 errs <<<"$row"
    printf '%-8s %12s %10s %10s %8s\n' "$tool" "$rps" "$p50" "$p99" "$errs"
    if [[ $errs != 0 || $rps == - ]]; then
        status=1
    fi
done
if ((status)); then
    echo "There were errors: see the tool output above (or run without -q)." >&2
fi
exit "$status"
