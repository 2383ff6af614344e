#!/usr/bin/env bash
# A soak of lb with a flaky backend and a slowloris crowd at once (not a CI test):
#
#   scripts/soak.sh                       # 60 s
#   scripts/soak.sh --seconds 300 --ports 20000-20999 --no-build
#
# Two healthy demo backends and a flaky one (it answers 500 to --fail-rate of requests,
# and is killed for 4 s every 12 s) behind lb with fast health checks; keep-alive GET and
# POST workers and a crowd of slowloris connections run for the whole time
# (scripts/soak_clients.py). It prints what the clients saw and lb's warnings, and exits
# non-zero if a request was lost: an error lb made up, a dropped connection or a hang,
# while two healthy backends could have served it. Everything listens on 127.0.0.1.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

seconds=60 port_range=20000-31999 build=1 slow=1000 fail_rate=0.3 post_every=4
while [[ $# -gt 0 ]]; do
    case $1 in
        --seconds) seconds=$2; shift 2 ;;
        --ports) port_range=$2; shift 2 ;;
        --slow) slow=$2; shift 2 ;;
        --fail-rate) fail_rate=$2; shift 2 ;;
        --post-every) post_every=$2; shift 2 ;;
        --no-build) build=0; shift ;;
        -h | --help) sed -n '2,12p' "$0"; exit 0 ;;
        *) echo "soak.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
[[ $seconds =~ ^[0-9]+$ && $port_range =~ ^[0-9]+-[0-9]+$ ]] || {
    echo "soak.sh: bad --seconds or --ports" >&2
    exit 2
}

if ((build)); then
    cargo build --release --bins >&2
fi
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

tmp=$(mktemp -d)
pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT

read -r p1 p2 p3 plb <<<"$(python3 - "${port_range%-*}" "${port_range#*-}" <<'PY'
import random, socket, sys
lo, hi = int(sys.argv[1]), int(sys.argv[2])
found = []
for port in random.sample(range(lo, hi + 1), hi + 1 - lo):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
        found.append(port)
    except OSError:
        pass
    finally:
        s.close()
    if len(found) == 4:
        break
print(*found)
PY
)"

wait_port() {
    local i
    for ((i = 0; i < 100; i++)); do
        python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', int(sys.argv[1])), 0.2)" "$1" \
            2>/dev/null && return 0
        sleep 0.05
    done
    echo "soak.sh: nothing listens on $1" >&2
    return 1
}

target/release/backend --listen "127.0.0.1:$p1" --name healthy1 2>"$tmp/b1.log" &
pids+=($!)
target/release/backend --listen "127.0.0.1:$p2" --name healthy2 2>"$tmp/b2.log" &
pids+=($!)
flaky() {
    while true; do
        target/release/backend --listen "127.0.0.1:$p3" --name flaky --fail-rate "$fail_rate" \
            2>>"$tmp/b3.log" &
        local b=$!
        sleep 8
        kill "$b" 2>/dev/null || true
        wait "$b" 2>/dev/null || true
        sleep 4
    done
}
flaky &
pids+=($!)
wait_port "$p1" && wait_port "$p2" && wait_port "$p3"
target/release/lb -l "127.0.0.1:$plb" -b "127.0.0.1:$p1" -b "127.0.0.1:$p2" -b "127.0.0.1:$p3" \
    --admin off --health-interval 500ms --retry-base 200ms --retry-max 2s 2>"$tmp/lb.log" &
pids+=($!)
lb_pid=$!
wait_port "$plb"

echo "soak.sh: ${seconds}s, flaky backend (fail rate $fail_rate, down 4 s in 12), $slow slowloris" >&2
status=0
python3 scripts/soak_clients.py --port "$plb" --seconds "$seconds" --slow "$slow" \
    --post-every "$post_every" || status=$?
echo "lb: $(awk '/VmRSS/ { print $2 " KiB resident" }' "/proc/$lb_pid/status" 2>/dev/null)," \
    "$(grep -c ' WARN ' "$tmp/lb.log" || true) warnings, $(grep -c ' ERROR ' "$tmp/lb.log" || true) errors"
grep -E ' (WARN|ERROR) ' "$tmp/lb.log" | sed -E 's/^[0-9TZ:.-]+ +//' | sed -E 's/[0-9a-f]{16}/ID/g; s/[0-9]+/N/g' |
    sort | uniq -c | sort -rn | head -15
exit "$status"
