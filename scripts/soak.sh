#!/usr/bin/env bash
# A soak of lb with a flaky backend and a slowloris crowd at once (not a CI test).
#
#   scripts/soak.sh                       # 60 s
#   scripts/soak.sh --seconds 300 --ports 20000-20999 --no-build
#   scripts/soak.sh -- --max-pending 5000   # flags after -- go to lb
#   scripts/soak.sh --bin /tmp/old/target/release   # another build's lb and backend
#
# Two healthy demo backends and a flaky one (it answers 500 to --fail-rate of requests,
# and is killed for 4 s every 12 s) behind lb with fast health checks; keep-alive GET and
# POST workers and a crowd of slowloris connections run the whole time
# (scripts/soak_clients.py). It prints what the clients saw and lb's warnings, and exits
# non-zero if a request was lost: an error lb made up, a dropped connection or a hang,
# while two healthy backends could have served it. lb's /metrics is scraped every second
# (scripts/soak_metrics.py): the POST backlog over time, and per backend where its owed
# copies spent their time. Everything listens on 127.0.0.1.
set -euo pipefail

script=soak.sh
# shellcheck source=scripts/bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/bench/lib.sh"

seconds=60 build=1 slow=1000 fail_rate=0.3 post_every=4 port_range=20000-31999 lb_flags=()
bin=target/release
while [[ $# -gt 0 ]]; do
    case $1 in
        --seconds) need_arg "$@"; seconds=$2; shift 2 ;;
        --ports) need_arg "$@"; port_range=$2; shift 2 ;;
        --slow) need_arg "$@"; slow=$2; shift 2 ;;
        --fail-rate) need_arg "$@"; fail_rate=$2; shift 2 ;;
        --post-every) need_arg "$@"; post_every=$2; shift 2 ;;
        --no-build) build=0; shift ;;
        --bin) need_arg "$@"; bin=$2; build=0; shift 2 ;;
        --) shift; lb_flags=("$@"); break ;;
        -h | --help) sed -n '2,16p' "$0"; exit 0 ;;
        *) die_usage "unknown option: $1" ;;
    esac
done
positive "$seconds" || die_usage "bad --seconds: $seconds"
[[ $port_range =~ ^[0-9]+-[0-9]+$ ]] || die_usage "bad --ports: $port_range"

cd "$bench_root"
if ((build)); then
    cargo build --release --bins >&2
fi
read -r p1 p2 p3 plb padmin <<<"$(free_ports 5 "$port_range")"

"$bin/backend" --listen "127.0.0.1:$p1" --name healthy1 2>"$tmp/b1.log" &
pids+=($!)
wait_ready healthy1 "$!" "$p1" "$tmp/b1.log"
"$bin/backend" --listen "127.0.0.1:$p2" --name healthy2 2>"$tmp/b2.log" &
pids+=($!)
wait_ready healthy2 "$!" "$p2" "$tmp/b2.log"
# Sleeps run in the background and are waited for, so that TERM ends the loop (and the
# backend it started) at once.
flaky() {
    local b=""
    trap 'kill "$b" 2>/dev/null; exit 0' TERM
    while true; do
        "$bin/backend" --listen "127.0.0.1:$p3" --name flaky --fail-rate "$fail_rate" \
            2>>"$tmp/b3.log" &
        b=$!
        sleep 8 &
        wait $!
        kill "$b" 2>/dev/null || true
        wait "$b" 2>/dev/null || true
        sleep 4 &
        wait $!
    done
}
flaky &
pids+=($!)
"$bin/lb" -l "127.0.0.1:$plb" -b "127.0.0.1:$p1" -b "127.0.0.1:$p2" -b "127.0.0.1:$p3" \
    --admin "127.0.0.1:$padmin" --health-interval 500ms --retry-base 200ms --retry-max 2s \
    "${lb_flags[@]}" 2>"$tmp/lb.log" &
lb_pid=$!
pids+=("$lb_pid")
wait_ready lb "$lb_pid" "$plb" "$tmp/lb.log"

log "${seconds}s, flaky backend 127.0.0.1:$p3 (fail rate $fail_rate, down 4 s in 12)," \
    "$slow slowloris clients; lb ${lb_flags[*]}"
python3 scripts/soak_metrics.py --admin "127.0.0.1:$padmin" >"$tmp/metrics.txt" &
sampler=$!
pids+=("$sampler")
status=0
python3 scripts/soak_clients.py --port "$plb" --seconds "$seconds" --slow "$slow" \
    --post-every "$post_every" || status=$?
kill -TERM "$sampler"
wait "$sampler" || true
cat "$tmp/metrics.txt"
echo "lb: $(rss_kib "$lb_pid") KiB resident, $(grep -cE '(^| )WARN ' "$tmp/lb.log" || true) warnings," \
    "$(grep -cE '(^| )ERROR ' "$tmp/lb.log" || true) errors; the most frequent:"
grep -E '(^| )(WARN|ERROR) ' "$tmp/lb.log" | sed -E 's/^[0-9TZ:.-]+ +//; s/[0-9a-f]{16}/ID/g; s/[0-9]+/N/g' |
    sort | uniq -c | sort -rn | head -15
exit "$status"
