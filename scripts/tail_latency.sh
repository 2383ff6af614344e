#!/usr/bin/env bash
# Where a proxy's tail latency comes from: wrk's latency distribution beside how many
# requests the proxy serves per epoll wait and how often it is switched out, from
# `perf stat` on its process. Written to explain lb's p99 next to HAProxy's in
# docs/benchmarks.md. Everything listens on 127.0.0.1 and is stopped on exit.
set -euo pipefail

usage() {
    cat <<'TXT'
Usage: scripts/tail_latency.sh [options] > tail.md

Builds lb (release), starts two backends, lb and HAProxy in front of them, and runs
`wrk -t1 -c50 --latency` against each in alternating rounds while `perf stat` counts the
proxy's epoll waits, context switches and CPU time. One line per round: requests, requests
per epoll wait, context switches per request, latency p50/p75/p90/p99.

Options:
  --backend KIND    demo or nginx (default demo)
  --rounds N        alternating rounds (default 3)
  --duration SECS   length of each run, whole seconds (default 5)
  --ports FROM-TO   where to look for free loopback ports (default 27000-27999)
  -h, --help        this help

Needs wrk, haproxy and perf (Debian: sudo apt-get install wrk haproxy linux-perf), and
perf allowed to count another process's events (root, or kernel.perf_event_paranoid <= 1).
TXT
}

script=tail_latency.sh
# shellcheck source=scripts/bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/bench/lib.sh"

kind=demo
rounds=3
seconds=5
port_range=27000-27999
while [[ $# -gt 0 ]]; do
    case $1 in
        --backend) need_arg "$@"; kind=$2; shift 2 ;;
        --rounds) need_arg "$@"; rounds=$2; shift 2 ;;
        --duration) need_arg "$@"; seconds=$2; shift 2 ;;
        --ports) need_arg "$@"; port_range=$2; shift 2 ;;
        -h | --help) usage; exit 0 ;;
        *) die_usage "unknown option: $1" ;;
    esac
done
[[ $kind == demo || $kind == nginx ]] || die_usage "bad --backend: $kind (demo or nginx)"
positive "$rounds" || die_usage "bad --rounds: $rounds"
positive "$seconds" || die_usage "bad --duration: $seconds (whole seconds)"
check_port_range "$port_range" 27000-27999

cd "$bench_root"
wrk_bin=$(find_tool wrk) || die "wrk is not installed (sudo apt-get install wrk)"
haproxy_bin=$(find_tool haproxy) || die "haproxy is not installed (sudo apt-get install haproxy)"
perf_bin=$(find_tool perf) || die "perf is not installed (sudo apt-get install linux-perf)"
nginx_bin=""
if [[ $kind == nginx ]]; then
    nginx_bin=$(find_tool nginx) || die "nginx is not installed (sudo apt-get install nginx-light)"
fi
log "cargo build --release --bins"
cargo build --release --bins >&2
lb_bin=target/release/lb
backend_bin=target/release/backend
floor_bin=""
# shellcheck source=scripts/bench/proxies.sh
source scripts/bench/proxies.sh

take_ports 4 "$port_range"
start_backend "$kind" b1 "${ports[0]}"
start_backend "$kind" b2 "${ports[1]}"
start_proxy lb http "${ports[2]}" "${ports[0]}" "${ports[1]}"
start_proxy haproxy http "${ports[3]}" "${ports[0]}" "${ports[1]}"
URL[lb]="http://127.0.0.1:${ports[2]}/"
URL[haproxy]="http://127.0.0.1:${ports[3]}/"

echo "| round | proxy | requests | per epoll wait | context switches per request | p50 | p75 | p90 | p99 |"
echo "|---:|---|---:|---:|---:|---:|---:|---:|---:|"
for ((r = 1; r <= rounds; r++)); do
    for t in lb haproxy; do
        "$perf_bin" stat -x, -o "$tmp/perf.$t" \
            -e syscalls:sys_enter_epoll_wait,syscalls:sys_enter_epoll_pwait,context-switches \
            -p "${PIDS[$t]// /,}" -- sleep "$seconds" &
        perf_pid=$!
        out=$("$wrk_bin" -t1 -c50 -d"${seconds}s" --latency "${URL[$t]}")
        wait "$perf_pid"
        awk -v r="$r" -v t="$t" -v perf="$tmp/perf.$t" '
            /requests in/ { reqs = $1 }
            /Latency Distribution/ { dist = 1; next }
            dist && /%/ { lat[$1] = $2 }
            END {
                while ((getline line < perf) > 0) {
                    split(line, f, ",")
                    if (line ~ /epoll_(p)?wait/) waits += f[1]
                    if (line ~ /context-switches/) switches = f[1]
                }
                if (reqs == 0 || waits == 0) { print "no requests or no epoll waits counted" > "/dev/stderr"; exit 1 }
                printf "| %d | %s | %d | %.1f | %.3f | %s | %s | %s | %s |\n", r, t, reqs,
                    reqs / waits, switches / reqs, lat["50%"], lat["75%"], lat["90%"], lat["99%"]
            }' <<<"$out"
    done
done
