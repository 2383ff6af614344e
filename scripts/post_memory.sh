#!/usr/bin/env bash
# Memory under slow POST clients, lb next to nginx (not a CI test; issue 21, items 3-4):
#
#   scripts/post_memory.sh                      # 1000 slow uploaders, 100 slow readers, 3 rounds
#   scripts/post_memory.sh --uploaders 500 --readers 50 --rounds 1 --seconds 15 --no-build
#   scripts/post_memory.sh --lb /tmp/lb-old --proxies lb --rounds 1   # another lb build alone
#
# One demo backend, and lb and nginx (one worker, its defaults: client_max_body_size 1m,
# bodies and answers past its buffers go to temporary files) in front of it in turn.
# - Slow uploaders: each sends a POST head declaring 1 MiB (lb's --max-body and nginx's
#   client_max_body_size), 1023 KiB of the body at once, then a byte every 3 s; one that
#   is answered or cut off starts again a second later, so there are always N of them.
# - Slow readers: each POSTs to /bytes/8388608 (an 8 MiB answer), reads its first 64 KiB
#   and then nothing.
# For each load, once every client has had its first go, the proxy's resident memory
# (nginx: master and worker) is sampled every half second for --seconds; the table gives
# the median of those samples and the highest, as medians over the rounds with their
# range, and what the clients met. lb runs with its defaults (--max-buffered-bytes 64m,
# --client-min-rate 1k, --client-timeout 10s; 60s for the readers, as nginx's
# send_timeout); its lb_fanout_buffered_bytes is sampled too, and the size of nginx's
# temporary files.
# Everything listens on 127.0.0.1.
set -euo pipefail

script=post_memory.sh
# shellcheck source=scripts/bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/bench/lib.sh"

uploaders=1000 readers=100 rounds=3 seconds=30 build=1 port_range=20000-31999
lb_bin=target/release/lb proxies="lb nginx"
while [[ $# -gt 0 ]]; do
    case $1 in
        --uploaders) need_arg "$@"; uploaders=$2; shift 2 ;;
        --readers) need_arg "$@"; readers=$2; shift 2 ;;
        --rounds) need_arg "$@"; rounds=$2; shift 2 ;;
        --seconds) need_arg "$@"; seconds=$2; shift 2 ;;
        --ports) need_arg "$@"; check_port_range "$2" 20000-31999; port_range=$2; shift 2 ;;
        --lb) need_arg "$@"; lb_bin=$2; shift 2 ;;
        --proxies) need_arg "$@"; proxies=$2; shift 2 ;;
        --no-build) build=0; shift ;;
        -h | --help) sed -n '2,22p' "$0"; exit 0 ;;
        *) die_usage "unknown option: $1" ;;
    esac
done
for p in $proxies; do
    [[ $p == lb || $p == nginx ]] || die_usage "bad --proxies: $proxies (lb, nginx or both)"
done
for v in "$uploaders" "$readers" "$rounds" "$seconds"; do
    positive "$v" || die_usage "bad number: $v"
done
# Each client is a descriptor here and one or two in the proxy.
((uploaders + readers + 200 < nofile)) || die "ulimit -n is $nofile: too few for $uploaders uploaders"

cd "$bench_root"
if ((build)); then
    cargo build --release --bins >&2
fi
[[ -x $lb_bin ]] || die "no lb at $lb_bin"
backend_bin=target/release/backend
nginx_bin=$(find_tool nginx) || die "nginx is needed (apt-get install nginx-light)"
haproxy_bin="" floor_bin=""
# shellcheck source=scripts/bench/proxies.sh
source "$(dirname "${BASH_SOURCE[0]}")/bench/proxies.sh"

take_ports 4 "$port_range"
pb=${ports[0]} plb=${ports[1]} padmin=${ports[2]} pnginx=${ports[3]}
start_backend demo backend "$pb"

# lb's gauge of the bytes it holds for POSTs, in KiB.
held_kib() {
    local v
    v=$(http_get "$padmin" /metrics | awk '$1 == "lb_fanout_buffered_bytes" { print $2 }')
    echo $((${v:-0} / 1024))
}

# KiB in the files the given processes hold open after unlinking them: nginx's
# temporary files, bodies and answers past its buffers.
unlinked_kib() {
    local pid total=0 v
    for pid in "$@"; do
        v=$(find -L "/proc/$pid/fd" -maxdepth 1 -type f -links 0 -printf '%s\n' 2>/dev/null |
            awk '{ s += $1 } END { print int(s / 1024) }') || v=0
        total=$((total + ${v:-0}))
    done
    echo "$total"
}

# Runs LOAD (upload|read) against PROXY (lb|nginx) once; sets med, max, before, held
# (KiB: lb's bytes held for POSTs, or nginx's temporary files, at most) and seen (what the
# clients met).
run_once() {
    local proxy=$1 load=$2 port n out samples=() h pid_list client
    held=0
    case $proxy in
        lb) port=$plb ;;
        nginx) port=$pnginx ;;
    esac
    # A reader that takes nothing is let go after --client-timeout, nginx's after its
    # send_timeout (60 s): the same 60 s for both, so that they hold it throughout.
    lb_more=(--admin "127.0.0.1:$padmin")
    [[ $load == read ]] && lb_more+=(--client-timeout 60s)
    start_proxy "$proxy" http "$port" "$pb"
    pid_list=${PIDS[$proxy]}
    # shellcheck disable=SC2086  # a list of pids
    before=$(rss_kib $pid_list)
    n=$uploaders
    [[ $load == read ]] && n=$readers
    out=$tmp/clients.out
    python3 scripts/slow_posts.py "$load" --port "$port" -n "$n" --seconds "$seconds" >"$out" 2>"$tmp/clients.err" &
    client=$!
    pids+=("$client")
    while ! grep -q READY "$out" 2>/dev/null; do
        kill -0 "$client" 2>/dev/null || die "the clients stopped: $(cat "$tmp/clients.err")"
        sleep 0.2
    done
    while kill -0 "$client" 2>/dev/null; do
        # shellcheck disable=SC2086
        samples+=("$(rss_kib $pid_list)")
        if [[ $proxy == lb ]]; then
            h=$(held_kib)
            ((h > held)) && held=$h
        else
            # shellcheck disable=SC2086
            h=$(unlinked_kib $pid_list)
            ((h > held)) && held=$h
        fi
        sleep 0.5
    done
    wait "$client" || log "  the clients said: $(cat "$tmp/clients.err")"
    stop "$client"
    stop "$started_pid"
    med=$(median "${samples[*]}")
    max=$(tr ' ' '\n' <<<"${samples[*]}" | sort -n | tail -1)
    seen=$(sed -n 's/^DONE //p' "$out")
}

declare -A MED MAX BEFORE HELD SEEN
med=0 max=0 before=0 held=0 seen=""
for ((r = 1; r <= rounds; r++)); do
    for load in upload read; do
        for proxy in $proxies; do
            run_once "$proxy" "$load"
            k=$proxy-$load
            MED[$k]+=" $med" MAX[$k]+=" $max" BEFORE[$k]+=" $before" HELD[$k]+=" $held"
            SEEN[$k]=$seen
            note=", held for POSTs $held KiB"
            [[ $proxy == nginx ]] && note=", temporary files $held KiB"
            log "round $r/$rounds $load $(printf '%-6s' "$proxy") RSS median $((med / 1024)) MiB," \
                "highest $((max / 1024)) MiB (idle $before KiB)$note; $seen"
        done
    done
done

# "median (min-max)" of a list of KiB figures, in MiB.
mib_range() {
    local sorted
    sorted=$(tr ' ' '\n' <<<"$1" | grep -v '^$' | sort -n)
    awk -v m="$(median "$1")" -v lo="$(head -1 <<<"$sorted")" -v hi="$(tail -1 <<<"$sorted")" \
        'BEGIN { if (lo == hi) printf "%.1f MiB", m / 1024; else printf "%.1f MiB (%.1f-%.1f)", m / 1024, lo / 1024, hi / 1024 }'
}

echo "| $uploaders slow uploaders / $readers slow readers of 8 MiB, $rounds rounds | RSS idle | RSS under load, median | RSS under load, highest | what the clients met (last round) |"
echo "|---|---:|---:|---:|---|"
for load in upload read; do
    for proxy in $proxies; do
        k=$proxy-$load
        what=$([[ $load == upload ]] && echo "uploaders" || echo "readers")
        extra=" (held for POSTs at most $(mib_range "${HELD[$k]}"))"
        [[ $proxy == nginx ]] && extra=" (temporary files at most $(mib_range "${HELD[$k]}"))"
        echo "| $proxy, $what | $(mib_range "${BEFORE[$k]}") | $(mib_range "${MED[$k]}") | $(mib_range "${MAX[$k]}") | ${SEEN[$k]// /, }$extra |"
    done
done
