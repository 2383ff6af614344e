#!/usr/bin/env bash
# What routing costs: lb's CPU per request with the flags' single route, a config file with
# one route, and a file with 1 000 hosts of 10 path routes each, next to lb as it was before
# routing existed; then SIGHUP reloads of the large file under load. Everything listens on
# 127.0.0.1 and is stopped on exit.  scripts/route_bench.sh --help
set -euo pipefail

usage() {
    cat <<'TXT'
Usage: scripts/route_bench.sh [options] > results.md

Builds lb (cargo build --release) and, for the baseline, lb at --baseline (in a worktree
under target/, built once and kept). For each kind of backend (--backend) starts three
backends and these, side by side, and puts the same wrk load through each in alternating
rounds:
  before    the baseline lb, flags (-b three times): no routing step at all
  flags     lb with the same flags (one pool, one route that takes everything)
  one       lb -c with one route: pool = "app"
  large     lb -c with 1 000 hosts (h0.example.com ...) of 10 path routes each, the
            request for h500.example.com's last route (nine exact paths before it fail)
  fallback  the same file, a host no route names: every host's list is skipped and the
            last route (no host) takes it
Medians of requests/s, p99 and lb's own CPU per request (user + system, from /proc).
Last, --reloads SIGHUPs of the large file (its routes reordered each time) during one wrk
run: wrk's errors and the reloads lb applied.

The results (markdown) go to stdout, progress to stderr.

Options:
  --backend KIND    demo, nginx or both (default both; nginx needs nginx installed)
  --rounds N        alternating rounds (default 5)
  --duration DUR    length of each wrk run (default 5s)
  --connections N   wrk connections (default 50)
  --baseline REV    the lb to compare with (default: the commit before routing landed)
  --reloads N       SIGHUPs during the reload run (default 20)
  --ports FROM-TO   where to look for free loopback ports (default 20000-32000)
  --no-build        use the binaries as they are
  -h, --help        this help

Needs wrk, python3 and git; nginx for nginx backends (sudo apt-get install wrk nginx-light).
TXT
}

script=route_bench.sh
# shellcheck source=scripts/bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/bench/lib.sh"
nginx_bin=$(find_tool nginx) || nginx_bin=""
# shellcheck source=scripts/bench/proxies.sh
source "$(dirname "${BASH_SOURCE[0]}")/bench/proxies.sh"

backends=both
baseline=7b57222^
reload_count=20
port_range=20000-32000
build=1
while [[ $# -gt 0 ]]; do
    case $1 in
        --backend) need_arg "$@"; backends=$2; shift 2 ;;
        --rounds) need_arg "$@"; rounds=$2; shift 2 ;;
        --duration) need_arg "$@"; duration=$2; shift 2 ;;
        --connections) need_arg "$@"; connections=$2; shift 2 ;;
        --baseline) need_arg "$@"; baseline=$2; shift 2 ;;
        --reloads) need_arg "$@"; reload_count=$2; shift 2 ;;
        --ports) need_arg "$@"; port_range=$2; shift 2 ;;
        --no-build) build=0; shift ;;
        -h | --help) usage; exit 0 ;;
        *) die_usage "unknown option: $1" ;;
    esac
done
positive "$rounds" || die_usage "bad --rounds: $rounds"
positive "$connections" || die_usage "bad --connections: $connections"
positive "$reload_count" || die_usage "bad --reloads: $reload_count"
[[ $duration =~ ^[0-9]+s$ ]] || die_usage "bad --duration: $duration (seconds, e.g. 5s)"
case $backends in
    demo) kinds=(demo) ;;
    nginx) kinds=(nginx) ;;
    both) kinds=(demo nginx) ;;
    *) die_usage "bad --backend: $backends (demo, nginx or both)" ;;
esac
check_port_range "$port_range" 20000-32000

cd "$bench_root"
wrk_bin=$(find_tool wrk) || die "wrk is not installed (sudo apt-get install wrk)"
if [[ -z $nginx_bin && $backends != demo ]]; then
    [[ $backends == nginx ]] && die "nginx is not installed (sudo apt-get install nginx-light)"
    log "nginx not found: demo backends only"
    kinds=(demo)
fi
base_rev=$(git rev-parse --short "$baseline") || die "no such revision: $baseline"
base_tree=target/route-bench-baseline
if ((build)); then
    log "cargo build --release --bins"
    cargo build --release --bins >&2
    if [[ ! -d $base_tree ]]; then
        git worktree add --detach "$base_tree" "$base_rev" >&2
    fi
    git -C "$base_tree" checkout -q --detach "$base_rev"
    log "building the baseline lb ($base_rev) in $base_tree"
    (cd "$base_tree" && CARGO_TARGET_DIR=../route-bench-baseline-target cargo build --release --bin lb >&2)
fi
lb_bin=target/release/lb
base_bin=target/route-bench-baseline-target/release/lb
backend_bin=target/release/backend
for b in "$lb_bin" "$base_bin" "$backend_bin"; do
    [[ -x $b ]] || die "$b is missing (run without --no-build)"
done

# A config file: a listener on PORT, pool app of the three backends, and ROUTES.
site_file() {
    local port=$1 routes=$2
    printf '[admin]\nlisten = "off"\n\n[listeners.web]\naddress = "127.0.0.1:%s"\n\n' "$port"
    printf '[pools.app]\nbackends = ["127.0.0.1:%s", "127.0.0.1:%s", "127.0.0.1:%s"]\n\n' \
        "${ports[0]}" "${ports[1]}" "${ports[2]}"
    printf '%s' "$routes"
}
# 1 000 hosts of 10 routes each, the last of them for `/`; one route without a host at the
# end. SHIFT rotates the hosts' order, so that each reload changes every route's place.
large_routes() {
    python3 - "${1:-0}" <<'PY'
import sys
shift = int(sys.argv[1])
out = []
for i in range(1000):
    h = (i + shift) % 1000
    for p in range(9):
        out.append(f'[[routes]]\nhost = "h{h}.example.com"\npath = "/p{p}"\npool = "app"\n')
    out.append(f'[[routes]]\nname = "h{h}-root"\nhost = "h{h}.example.com"\npath = "/"\npool = "app"\n')
out.append('[[routes]]\nname = "fallback"\npool = "app"\n')
print("\n".join(out))
PY
}

# wrk's Lua: requests for one Host.
host_lua() {
    printf 'wrk.headers["Host"] = "%s"\n' "$2" >"$tmp/$1.lua"
    echo "$tmp/$1.lua"
}

start_lb() {
    local name=$1 port=$2
    shift 2
    "$@" 2>"$tmp/$name.log" &
    pids+=($!)
    wait_ready "$name" "$!" "$port" "$tmp/$name.log"
    PIDS[$name]=$!
    LOGF[$name]=$tmp/$name.log
    URL[$name]=http://127.0.0.1:$port/
}

targets=(before flags one large fallback)
declare -A LABELS=(
    [before]="lb $base_rev, flags (no routing)"
    [flags]="lb, flags"
    [one]="lb -c, 1 route"
    [large]="lb -c, 10 001 routes, host h500"
    [fallback]="lb -c, 10 001 routes, no host matches"
)
echo "## What routing costs ($(date +%F))"
echo
echo "wrk -t$threads -c$connections -d$duration, GET /, $rounds alternating rounds, medians; lb CPU is"
echo "its user + system time per answered request. lb $(git rev-parse --short HEAD) against lb $base_rev, the"
echo "commit before routing. The large file has 1 000 hosts of 10 path routes each; h500's"
echo "request is taken by its 10th route."
for kind in "${kinds[@]}"; do
    take_ports 8 "$port_range"
    for i in 0 1 2; do
        start_backend "$kind" "$kind$i" "${ports[$i]}"
    done
    be=(-b "127.0.0.1:${ports[0]}" -b "127.0.0.1:${ports[1]}" -b "127.0.0.1:${ports[2]}")
    start_lb before "${ports[3]}" "$base_bin" -q -l "127.0.0.1:${ports[3]}" --admin off "${be[@]}"
    start_lb flags "${ports[4]}" "$lb_bin" -q -l "127.0.0.1:${ports[4]}" --admin off "${be[@]}"
    site_file "${ports[5]}" $'[[routes]]\npool = "app"\n' >"$tmp/one.toml"
    start_lb one "${ports[5]}" "$lb_bin" -q -c "$tmp/one.toml"
    large_file=$tmp/large.toml
    site_file "${ports[6]}" "$(large_routes 0)" >"$large_file"
    # Not -q: the reloads below are counted from its log.
    start_lb large "${ports[6]}" "$lb_bin" -c "$large_file"
    # The same process, another Host.
    PIDS[fallback]=${PIDS[large]}
    LOGF[fallback]=${LOGF[large]}
    URL[fallback]=${URL[large]}
    SCRIPT[large]=$(host_lua large h500.example.com)
    SCRIPT[fallback]=$(host_lua fallback nowhere.example.org)
    for t in "${targets[@]}"; do
        LABEL[$t]=${LABELS[$t]}
    done
    log "$kind backends"
    bench_alternating "${targets[@]}"
    echo
    echo "### $kind backends"
    echo
    table "${targets[@]}"
    echo
    echo "| over lb $base_rev's | requests/s | p99 latency | CPU per request |"
    echo "|---|---:|---:|---:|"
    for t in flags one large fallback; do
        echo "| ${LABEL[$t]} | $(ratio "$(median "${RPS[$t]}")" "$(median "${RPS[before]}")") |" \
            "$(ratio "$(median "${P99[$t]}")" "$(median "${P99[before]}")") |" \
            "$(ratio "$(median "${CPU[$t]}")" "$(median "${CPU[before]}")") |"
    done

    # Reloads of the large file under load, each with its hosts rotated.
    large_pid=${PIDS[large]}
    rm -f "$tmp/stop"
    python3 - "$large_file" "$large_pid" "$reload_count" "$tmp/stop" "${ports[*]}" <<'PY' &
import os, signal, subprocess, sys, time
path, pid, count, stop = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
text = open(path).read()
head, routes = text.split("[[routes]]", 1)
blocks = ["[[routes]]" + b for b in routes.split("[[routes]]")]
body, last = blocks[:-1], blocks[-1]
time.sleep(1)
for i in range(1, count + 1):
    k = (i * 97 * 10) % len(body)
    with open(path + ".next", "w") as f:
        f.write(head + "".join(body[k:] + body[:k]) + last)
    os.replace(path + ".next", path)
    os.kill(pid, signal.SIGHUP)
    time.sleep(0.25)
PY
    storm_pid=$!
    reload_secs=$((reload_count / 4 + 3))
    read -r rps p99 errs answered <<<"$(wrk_run "${URL[large]}" "${reload_secs}s" "${SCRIPT[large]}")"
    wait "$storm_pid"
    applied=$(grep -c "reloaded the config file" "${LOGF[large]}" || true)
    failed=$(grep -c "reload failed" "${LOGF[large]}" || true)
    log "reloads: $applied applied, $failed failed, wrk $rps req/s, p99 $p99 ms, $errs errors"
    echo
    echo "$reload_count SIGHUPs of the 10 001-route file, its hosts rotated each time, 4 a second during one"
    echo "${reload_secs} s wrk run: $applied reloads applied, $failed failed; $(fmt_int "$rps") requests/s,"
    echo "p99 $(fmt_ms "$p99"), $errs wrk errors in $answered answered requests."
    terminate "${pids[@]}"
    pids=()
done
