#!/usr/bin/env bash
# What runtime changes cost while lb serves: wrk's requests/s, p99 and errors during a
# storm of SIGHUP reloads that add and remove backends, against the same load with no
# reloads, in alternating rounds; then wrk's errors across SIGUSR2 upgrades.
# Everything listens on 127.0.0.1 and is stopped on exit.  scripts/reload_bench.sh --help
set -euo pipefail

usage() {
    cat <<'TXT'
Usage: scripts/reload_bench.sh [options] > results.md

Builds lb (cargo build --release), starts four demo backends on free loopback ports and lb
in front of them with a backends file, then alternates wrk runs:
  - quiet: nothing changes
  - storm: the file is rewritten (adding or removing one backend) and lb gets SIGHUP
    every --interval for the whole run
for keep-alive clients and for clients that open a connection per request (wrk -H
'Connection: close'). Medians of requests/s and p99, the sum of wrk's errors, and the
reloads lb applied are reported. Last, wrk runs across --upgrades SIGUSR2 upgrades (lb
starts its own binary again and hands it the listening sockets) and its errors are shown.

The results (markdown) go to stdout, progress to stderr.

Options:
  --rounds N        alternating rounds per mode (default 3)
  --duration SECS   length of each wrk run in seconds (default 5)
  --interval MS     time between two SIGHUPs in a storm (default 20, i.e. 50 reloads/s)
  --connections N   wrk connections (default 50)
  --upgrades N      SIGUSR2 upgrades under load at the end, 0 for none (default 3)
  --ports FROM-TO   where to look for free loopback ports (default 20000-32000)
  --no-build        use target/release/{lb,backend} as they are
  -h, --help        this help

Needs wrk and python3 (Debian/Ubuntu: sudo apt-get install wrk python3).
TXT
}

log() { echo "reload_bench.sh: $*" >&2; }
die() {
    log "$*"
    exit 1
}
die_usage() {
    log "$*"
    echo "Try scripts/reload_bench.sh --help" >&2
    exit 2
}

rounds=3
duration=5
interval=20
connections=50
upgrades=3
port_range=20000-32000
build=1
need_arg() { [[ $# -ge 2 && -n $2 ]] || die_usage "$1 needs a value"; }
while [[ $# -gt 0 ]]; do
    case $1 in
        --rounds) need_arg "$@"; rounds=$2; shift 2 ;;
        --duration) need_arg "$@"; duration=$2; shift 2 ;;
        --interval) need_arg "$@"; interval=$2; shift 2 ;;
        --connections) need_arg "$@"; connections=$2; shift 2 ;;
        --upgrades) need_arg "$@"; upgrades=$2; shift 2 ;;
        --ports) need_arg "$@"; port_range=$2; shift 2 ;;
        --no-build) build=0; shift ;;
        -h | --help) usage; exit 0 ;;
        *) die_usage "unknown option: $1" ;;
    esac
done
number() { [[ $1 =~ ^[0-9]+$ ]]; }
for v in rounds duration interval connections; do
    number "${!v}" && ((10#${!v} > 0)) || die_usage "bad --$v: ${!v}"
done
number "$upgrades" || die_usage "bad --upgrades: $upgrades"
[[ $port_range =~ ^([0-9]+)-([0-9]+)$ ]] && ((BASH_REMATCH[1] < BASH_REMATCH[2])) ||
    die_usage "bad --ports: $port_range (e.g. 20000-32000)"

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
command -v wrk >/dev/null || die "wrk is not installed (sudo apt-get install wrk)"
command -v python3 >/dev/null || die "python3 is not installed"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/lb-reload-bench.XXXXXX")
pids=()
cleanup() {
    trap - EXIT INT TERM
    local pid
    for pid in "${pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    sleep 0.3
    for pid in "${pids[@]}"; do
        kill -KILL "$pid" 2>/dev/null || true
    done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if ((build)); then
    log "cargo build --release --bins"
    cargo build --release --bins >&2
fi
for b in lb backend; do
    [[ -x target/release/$b ]] || die "target/release/$b is missing (run without --no-build)"
done
# A private copy: an upgrade runs the file at lb's own path again.
mkdir "$tmp/bin"
cp target/release/lb target/release/backend "$tmp/bin/"

read -r -a ports <<<"$(python3 - "${port_range%-*}" "${port_range#*-}" <<'PY'
import random, socket, sys
low, high = int(sys.argv[1]), int(sys.argv[2])
found = []
for port in random.sample(range(low, high + 1), min(4000, high + 1 - low)):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
        found.append(port)
    except OSError:
        pass
    finally:
        s.close()
    if len(found) == 5:
        break
print(" ".join(map(str, found)))
PY
)"
((${#ports[@]} == 5)) || die "not 5 free ports in $port_range"
lb_port=${ports[0]}
for i in 1 2 3 4; do
    "$tmp/bin/backend" --listen "127.0.0.1:${ports[$i]}" --name "b$i" 2>"$tmp/b$i.log" &
    pids+=($!)
done
file=$tmp/servers.txt
# The sets a storm cycles through: one backend joins or leaves at each reload.
sets=("1 2 3" "1 2 3 4" "2 3 4" "1 2 4" "1 3 4" "1 2 3")
write_set() {
    local n out=""
    for n in $1; do
        out+="127.0.0.1:${ports[$n]}"$'\n'
    done
    printf '%s' "$out" >"$file.next"
    mv "$file.next" "$file"
}
write_set "${sets[0]}"
lb_log=$tmp/lb.log
"$tmp/bin/lb" -l "127.0.0.1:$lb_port" -f "$file" --admin off 2>"$lb_log" &
lb_pid=$!
pids+=("$lb_pid")
for ((i = 0; i < 100; i++)); do
    grep -q "listening on" "$lb_log" && break
    sleep 0.1
done
grep -q "listening on" "$lb_log" || die "lb did not start: $(cat "$lb_log")"

# Runs wrk for the run's length; prints "requests/s p99_ms errors".
wrk_run() {
    local out rps p99 errors
    out=$(wrk -t1 -c"$connections" -d"${duration}s" --latency "$@" "http://127.0.0.1:$lb_port/" 2>&1)
    rps=$(awk '/^Requests\/sec:/ { print $2 }' <<<"$out")
    p99=$(awk '$1 == "99%" { v = $2; if (v ~ /us$/) { sub(/us$/, "", v); v /= 1000 }
        else if (v ~ /ms$/) { sub(/ms$/, "", v) } else if (v ~ /s$/) { sub(/s$/, "", v); v *= 1000 }
        print v }' <<<"$out")
    errors=$(awk '/Socket errors:/ { gsub(",", ""); s += $4 + $6 + $8 + $10 }
        /Non-2xx/ { s += $5 } END { print s + 0 }' <<<"$out")
    echo "${rps:-0} ${p99:-0} $errors"
}

reloads() { grep -c "reloaded " "$lb_log" || true; }

# SIGHUPs lb every --interval, after rewriting the file with the next set, until the file
# "stop" appears. One python process: a shell loop would fork several per reload and take
# CPU from what is measured.
storm() {
    python3 - "$file" "$lb_pid" "$interval" "$tmp/stop" "${ports[*]}" "${sets[@]}" <<'PY' &
import os, signal, sys, time
path, pid, interval, stop = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]) / 1000, sys.argv[4]
ports = sys.argv[5].split()
sets = [s.split() for s in sys.argv[6:]]
i = 0
while not os.path.exists(stop):
    i += 1
    with open(path + ".next", "w") as f:
        f.write("".join(f"127.0.0.1:{ports[int(n)]}\n" for n in sets[i % len(sets)]))
    os.replace(path + ".next", path)
    os.kill(pid, signal.SIGHUP)
    time.sleep(interval)
PY
    storm_pid=$!
}

# Running, not exited (the first lb is this shell's child and stays a zombie until waited for).
alive() { [[ -e /proc/$1 ]] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null; }

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

declare -A rps p99 errs applied
for load in keep-alive close; do
    args=()
    [[ $load == close ]] && args=(-H "Connection: close")
    for ((r = 1; r <= rounds; r++)); do
        for mode in quiet storm; do
            key="$load $mode"
            before=$(reloads)
            if [[ $mode == storm ]]; then
                rm -f "$tmp/stop"
                storm
            fi
            read -r a b c <<<"$(wrk_run "${args[@]}")"
            if [[ $mode == storm ]]; then
                touch "$tmp/stop"
                wait "$storm_pid"
                write_set "${sets[0]}"
                kill -HUP "$lb_pid"
                sleep 0.3
            fi
            rps[$key]+="$a "
            p99[$key]+="$b "
            errs[$key]=$((${errs[$key]:-0} + c))
            applied[$key]=$((${applied[$key]:-0} + $(reloads) - before))
            log "$key round $r: $a requests/s, p99 $b ms, $c errors"
        done
    done
done

upgrade_errors=0
upgrade_rps=""
for ((u = 1; u <= upgrades; u++)); do
    wrk_run >"$tmp/wrk.out" &
    wrk_pid=$!
    sleep "$(awk -v d="$duration" 'BEGIN { print d / 2 }')"
    kill -USR2 "$lb_pid"
    for ((i = 0; i < 100; i++)); do
        new=$(grep -o "as pid [0-9]*" "$lb_log" | awk -v u="$u" 'NR == u { print $3 }') || true
        [[ -n $new ]] && break
        sleep 0.1
    done
    [[ -n ${new:-} ]] || die "upgrade $u: no new process logged: $(tail -5 "$lb_log")"
    pids+=("$new")
    wait "$wrk_pid"
    read -r a _ c <"$tmp/wrk.out"
    upgrade_errors=$((upgrade_errors + c))
    upgrade_rps+="$a "
    for ((i = 0; i < 100; i++)); do
        alive "$lb_pid" || break
        sleep 0.1
    done
    alive "$lb_pid" && die "upgrade $u: pid $lb_pid still runs: $(tail -5 "$lb_log")"
    log "upgrade $u: pid $lb_pid -> $new, $a requests/s, $c errors"
    lb_pid=$new
done

echo "## Runtime changes under load ($(date +%F))"
echo
echo "wrk -t1 -c$connections -d${duration}s against lb in front of 4 demo backends, $rounds"
echo "alternating rounds, medians. A storm rewrites the backends file (one backend joins or"
echo "leaves) and sends SIGHUP every ${interval} ms for the whole run; SIGHUPs that arrive while"
echo "a reload is being read coalesce into one, so fewer reloads are applied than sent."
echo
echo "| load | requests/s quiet | requests/s storm | storm/quiet | p99 quiet | p99 storm | errors quiet / storm | reloads applied per second |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
for load in keep-alive close; do
    q=$(tr ' ' '\n' <<<"${rps[$load quiet]}" | grep . | median)
    s=$(tr ' ' '\n' <<<"${rps[$load storm]}" | grep . | median)
    pq=$(tr ' ' '\n' <<<"${p99[$load quiet]}" | grep . | median)
    ps=$(tr ' ' '\n' <<<"${p99[$load storm]}" | grep . | median)
    ratio=$(awk -v s="$s" -v q="$q" 'BEGIN { printf "%.2f", (q > 0 ? s / q : 0) }')
    per_second=$(awk -v n="${applied[$load storm]}" -v t="$((rounds * duration))" 'BEGIN { printf "%.0f", n / t }')
    echo "| $load | $q | $s | $ratio | $pq ms | $ps ms | ${errs[$load quiet]} / ${errs[$load storm]} | $per_second |"
done
if ((upgrades > 0)); then
    echo
    echo "$upgrades SIGUSR2 upgrades, each in the middle of a ${duration}s keep-alive wrk run:"
    echo "$upgrade_errors wrk errors; requests/s of those runs: $upgrade_rps"
fi
