#!/usr/bin/env bash
# What --workers costs and how evenly it spreads clients: lb's CPU time per request with
# --workers 1 and --workers 2 under the same wrk load (alternating rounds), how lb's two
# workers share few long-lived and many short connections (from /metrics), and the same
# spread for the kernel's two ways of sharing a port (examples/accept_spread.rs).
# Everything listens on 127.0.0.1 and is stopped on exit.  scripts/workers_bench.sh --help
set -euo pipefail

usage() {
    cat <<'TXT'
Usage: scripts/workers_bench.sh [options] > results.md

Builds lb, the demo backend and examples/accept_spread (release), starts two demo backends
and two lbs in front of them, one with --workers 1 and one with --workers 2, then:
  1. CPU: wrk against each lb in alternating rounds; medians of requests/s, p99 and lb's
     own CPU time per answered request (user + system of all its threads, from /proc).
  2. Spread in lb: 4 keep-alive connections opened one after another (few, long-lived),
     --long-rounds times, and a wrk run with a new connection per request (many, short);
     how many each worker accepted, from lb_worker_client_connections_total.
  3. Fresh runs: --fresh-runs times, a new lb --workers 2 and one wrk run against it; each
     worker's share of the requests, from lb_worker_client_requests_total (a burst of
     wrk's connections all waiting in the queue before lb takes any).
  4. Spread in the kernel: the same two patterns against SO_REUSEPORT (a socket per
     worker), one socket with EPOLLEXCLUSIVE, and EPOLLEXCLUSIVE with lb's re-registration
     of a worker that holds more than its share.
For requests/s during a reload storm with several workers:
  scripts/reload_bench.sh --workers 2

The results (markdown) go to stdout, progress to stderr.

Options:
  --rounds N        alternating rounds for the CPU comparison (default 5)
  --duration DUR    length of each wrk run (default 5s)
  --connections N   wrk connections (default 50)
  --threads N       wrk threads (default 1)
  --long-rounds N   rounds of 4 long-lived connections (default 20)
  --fresh-runs N    fresh lb --workers 2 runs, 2 s of wrk each (default 10)
  --ports FROM-TO   where to look for free loopback ports (default 20000-32000)
  --no-build        use target/release/{lb,backend} and examples/accept_spread as they are
  -h, --help        this help

Needs wrk and python3 (Debian/Ubuntu: sudo apt-get install wrk python3).
TXT
}

script=workers_bench.sh
# shellcheck source=scripts/bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/bench/lib.sh"

rounds=5
long_rounds=20
fresh_runs=10
port_range=20000-32000
build=1
while [[ $# -gt 0 ]]; do
    case $1 in
        --rounds) need_arg "$@"; rounds=$2; shift 2 ;;
        --duration) need_arg "$@"; duration=$2; shift 2 ;;
        --connections) need_arg "$@"; connections=$2; shift 2 ;;
        --threads) need_arg "$@"; threads=$2; shift 2 ;;
        --long-rounds) need_arg "$@"; long_rounds=$2; shift 2 ;;
        --fresh-runs) need_arg "$@"; fresh_runs=$2; shift 2 ;;
        --ports) need_arg "$@"; port_range=$2; shift 2 ;;
        --no-build) build=0; shift ;;
        -h | --help) usage; exit 0 ;;
        *) die_usage "unknown option: $1" ;;
    esac
done
positive "$rounds" || die_usage "bad --rounds: $rounds"
positive "$connections" || die_usage "bad --connections: $connections"
positive "$threads" || die_usage "bad --threads: $threads"
positive "$long_rounds" || die_usage "bad --long-rounds: $long_rounds"
positive "$fresh_runs" || die_usage "bad --fresh-runs: $fresh_runs"
[[ $duration =~ ^[0-9]+s$ ]] || die_usage "bad --duration: $duration (seconds, e.g. 5s)"
check_port_range "$port_range" 20000-32000

cd "$bench_root"
wrk_bin=$(find_tool wrk) || die "wrk is not installed (sudo apt-get install wrk)"
command -v python3 >/dev/null || die "python3 is not installed"
if ((build)); then
    log "cargo build --release --bins --example accept_spread"
    cargo build --release --bins --example accept_spread >&2
fi
for b in target/release/lb target/release/backend target/release/examples/accept_spread; do
    [[ -x $b ]] || die "$b is missing (run without --no-build)"
done

take_ports 8 "$port_range"
for i in 1 2; do
    target/release/backend --listen "127.0.0.1:${ports[$i]}" --name "b$i" 2>"$tmp/b$i.log" &
    pids+=($!)
    wait_ready "backend b$i" "$!" "${ports[$i]}" "$tmp/b$i.log"
done
backends=(-b "127.0.0.1:${ports[1]}" -b "127.0.0.1:${ports[2]}")
# lb with one worker on ports[3], with two on ports[4] (its admin listener on ports[5]).
target/release/lb -l "127.0.0.1:${ports[3]}" "${backends[@]}" --admin off --workers 1 \
    2>"$tmp/lb1.log" &
pids+=($!)
lb1=$!
wait_ready "lb --workers 1" "$lb1" "${ports[3]}" "$tmp/lb1.log"
target/release/lb -l "127.0.0.1:${ports[4]}" "${backends[@]}" --admin "127.0.0.1:${ports[5]}" \
    --workers 2 2>"$tmp/lb2.log" &
pids+=($!)
lb2=$!
wait_ready "lb --workers 2" "$lb2" "${ports[4]}" "$tmp/lb2.log"

# 1. CPU per request, alternating.
URL[w1]="http://127.0.0.1:${ports[3]}/" LABEL[w1]="lb --workers 1" PIDS[w1]=$lb1 LOGF[w1]=$tmp/lb1.log
URL[w2]="http://127.0.0.1:${ports[4]}/" LABEL[w2]="lb --workers 2" PIDS[w2]=$lb2 LOGF[w2]=$tmp/lb2.log
log "CPU per request: wrk -t$threads -c$connections -d$duration, $rounds rounds"
bench_alternating w1 w2

# 2. Spread in lb, from the admin listener's per-worker counters.
accepted() {
    curl -s "http://127.0.0.1:${ports[5]}/metrics" |
        awk '/^lb_worker_client_connections_total/ { printf "%s ", $2 }'
}
minus() { awk -v a="$1" -v b="$2" 'BEGIN { n = split(a, x, " "); split(b, y, " "); for (i = 1; i <= n; i++) printf "%d ", x[i] - y[i] }'; }
log "spread in lb: $long_rounds rounds of 4 long-lived connections"
long_splits=""
for ((r = 1; r <= long_rounds; r++)); do
    before=$(accepted)
    python3 - "${ports[4]}" <<'PY'
import socket, sys, time
held = []
for _ in range(4):
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
    s.sendall(b"GET / HTTP/1.1\r\nHost: b\r\n\r\n")
    s.recv(4096)
    held.append(s)
    time.sleep(0.05)
time.sleep(0.1)
PY
    split=$(minus "$(accepted)" "$before")
    long_splits+="${split% }|"
done
log "spread in lb: wrk with a new connection per request"
printf 'wrk.headers["Connection"] = "close"\n' >"$tmp/close.lua"
before=$(accepted)
wrk_run "http://127.0.0.1:${ports[4]}/" "$duration" "$tmp/close.lua" >/dev/null
short_split=$(minus "$(accepted)" "$before")

# 3. Fresh runs: a new lb each time, so that wrk's burst of connections meets idle workers.
log "spread in lb: $fresh_runs fresh runs of wrk -c$connections"
fresh_shares=""
for ((r = 1; r <= fresh_runs; r++)); do
    target/release/lb -q -l "127.0.0.1:${ports[6]}" "${backends[@]}" \
        --admin "127.0.0.1:${ports[7]}" --workers 2 2>"$tmp/lbf.log" &
    fresh=$!
    pids+=("$fresh")
    wait_ready "lb --workers 2 (fresh run $r)" "$fresh" "${ports[6]}" "$tmp/lbf.log"
    "$wrk_bin" -t"$threads" -c"$connections" -d2s "http://127.0.0.1:${ports[6]}/" >/dev/null
    fresh_shares+=$(curl -s "http://127.0.0.1:${ports[7]}/metrics" |
        awk '/^lb_worker_client_requests_total/ { n[++k] = $2 }
            END { m = n[1] > n[2] ? n[1] : n[2]; printf "%.0f%% ", 100 * m / (n[1] + n[2]) }')
    kill "$fresh"
    wait "$fresh" 2>/dev/null || true
done

# 4. The kernel's spread, the same patterns.
declare -A KLONG KSHORT
for mode in reuseport exclusive exclusive-requeue; do
    log "spread in the kernel: $mode"
    KLONG[$mode]=$(target/release/examples/accept_spread "$mode" 2 4 long "$long_rounds" | tr '\n' '|')
    KSHORT[$mode]=$(target/release/examples/accept_spread "$mode" 2 2000 short 3 | tr '\n' '|')
done

# A list of "a b|c d|..." splits of 4: how many rounds were 2-2, 3-1 and 4-0.
balance() {
    tr '|' '\n' <<<"$1" | awk 'NF == 2 { d = $1 - $2; if (d < 0) d = -d; n[d]++ }
        END { printf "%d / %d / %d", n[0], n[2], n[4] }'
}
# Short runs: the smaller worker's share of all connections, per run.
share() {
    tr '|' '\n' <<<"$1" | awk 'NF == 2 && $1 + $2 > 0 { m = $1 < $2 ? $1 : $2; printf "%.0f%% ", 100 * m / ($1 + $2) }'
}

echo "## Workers ($(date +%F))"
echo
echo "wrk -t$threads -c$connections -d$duration, keep-alive, against lb in front of 2 demo"
echo "backends; $rounds alternating rounds, medians. lb CPU is the user + system time of all"
echo "its threads per answered request."
echo
table w1 w2
echo
echo "CPU per request, --workers 2 / --workers 1: $(ratio "$(median "${CPU[w2]}")" "$(median "${CPU[w1]}")")"
echo
echo "Spread over 2 workers. Few long-lived: $long_rounds rounds of 4 keep-alive connections"
echo "opened 50 ms apart (rounds split 2-2 / 3-1 / 4-0). Many short: a new connection per"
echo "request (the smaller worker's share of the connections, 50% is even)."
echo
echo "| accepting | few long-lived: 2-2 / 3-1 / 4-0 | many short: smaller share |"
echo "|---|---:|---:|"
echo "| lb --workers 2 | $(balance "$long_splits") | $(share "${short_split% }") |"
for mode in reuseport exclusive exclusive-requeue; do
    echo "| kernel, $mode | $(balance "${KLONG[$mode]}") | $(share "${KSHORT[$mode]}") |"
done
echo
echo "Fresh runs: $fresh_runs times a new lb --workers 2 and wrk -t$threads -c$connections -d2s;"
echo "the busier worker's share of the requests in each run (50% is even): ${fresh_shares% }"

