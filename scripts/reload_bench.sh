#!/usr/bin/env bash
# What runtime changes cost while lb serves: requests/s, p99, lb's CPU per request and
# errors during a storm of SIGHUP reloads that add and remove backends, against the same
# load with no reloads, in alternating rounds; then wrk's errors across SIGUSR2 upgrades.
# Everything listens on 127.0.0.1 and is stopped on exit.  scripts/reload_bench.sh --help
set -euo pipefail

usage() {
    cat <<'TXT'
Usage: scripts/reload_bench.sh [options] > results.md

Builds lb (cargo build --release), starts four demo backends on free loopback ports and lb
in front of them with a backends file, then alternates wrk runs:
  - quiet: nothing changes
  - storm: the file is rewritten (one backend joins or leaves) and lb gets SIGHUP every
    --interval for the whole run
for keep-alive clients and for clients that open a connection per request. Medians of
requests/s, p99 and lb's own CPU time per request (user + system, from /proc), wrk's errors
and the reloads lb applied are reported. Last, wrk runs across --upgrades SIGUSR2 upgrades
(lb starts its own binary again and hands it the listening sockets); its errors are shown.

The results (markdown) go to stdout, progress to stderr.

Options:
  --rounds N        alternating rounds per mode (default 3)
  --duration DUR    length of each wrk run (default 5s)
  --interval MS     time between two SIGHUPs in a storm (default 20, i.e. 50 reloads/s)
  --connections N   wrk connections (default 50)
  --upgrades N      SIGUSR2 upgrades under load at the end, 0 for none (default 3)
  --workers N       lb's --workers (default 1)
  --ports FROM-TO   where to look for free loopback ports (default 20000-32000)
  --no-build        use target/release/{lb,backend} as they are
  -h, --help        this help

Needs wrk and python3 (Debian/Ubuntu: sudo apt-get install wrk python3).
TXT
}

script=reload_bench.sh
# shellcheck source=scripts/bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/bench/lib.sh"

rounds=3
interval=20
upgrades=3
workers=1
port_range=20000-32000
build=1
while [[ $# -gt 0 ]]; do
    case $1 in
        --rounds) need_arg "$@"; rounds=$2; shift 2 ;;
        --duration) need_arg "$@"; duration=$2; shift 2 ;;
        --interval) need_arg "$@"; interval=$2; shift 2 ;;
        --connections) need_arg "$@"; connections=$2; shift 2 ;;
        --upgrades) need_arg "$@"; upgrades=$2; shift 2 ;;
        --workers) need_arg "$@"; workers=$2; shift 2 ;;
        --ports) need_arg "$@"; port_range=$2; shift 2 ;;
        --no-build) build=0; shift ;;
        -h | --help) usage; exit 0 ;;
        *) die_usage "unknown option: $1" ;;
    esac
done
positive "$rounds" || die_usage "bad --rounds: $rounds"
positive "$interval" || die_usage "bad --interval: $interval"
positive "$connections" || die_usage "bad --connections: $connections"
positive "$workers" || die_usage "bad --workers: $workers"
[[ $upgrades =~ ^[0-9]+$ ]] || die_usage "bad --upgrades: $upgrades"
[[ $duration =~ ^[0-9]+s$ ]] || die_usage "bad --duration: $duration (seconds, e.g. 5s)"
check_port_range "$port_range" 20000-32000

cd "$bench_root"
wrk_bin=$(find_tool wrk) || die "wrk is not installed (sudo apt-get install wrk)"
command -v python3 >/dev/null || die "python3 is not installed"
if ((build)); then
    log "cargo build --release --bins"
    cargo build --release --bins >&2
fi
for b in lb backend; do
    [[ -x target/release/$b ]] || die "target/release/$b is missing (run without --no-build)"
done
# A private copy: an upgrade starts the file at lb's own path again.
mkdir "$tmp/bin"
cp target/release/lb target/release/backend "$tmp/bin/"

take_ports 5 "$port_range"
lb_port=${ports[0]}
for i in 1 2 3 4; do
    "$tmp/bin/backend" --listen "127.0.0.1:${ports[$i]}" --name "b$i" 2>"$tmp/b$i.log" &
    pids+=($!)
    wait_ready "backend b$i" "$!" "${ports[$i]}" "$tmp/b$i.log"
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
"$tmp/bin/lb" -l "127.0.0.1:$lb_port" -f "$file" --admin off --workers "$workers" 2>"$lb_log" &
lb_pid=$!
pids+=("$lb_pid")
wait_ready lb "$lb_pid" "$lb_port" "$lb_log"
url=http://127.0.0.1:$lb_port/
printf 'wrk.headers["Connection"] = "close"\n' >"$tmp/close.lua"

reloads() { grep -c "reloaded " "$lb_log" || true; }

# SIGHUPs lb every --interval, after writing the next set, until the file "stop" appears.
# One python process: a shell loop would fork several per reload, taking CPU from lb.
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

declare -A rps p99 cpu errs applied
for load in keep-alive close; do
    lua=""
    [[ $load == close ]] && lua=$tmp/close.lua
    for ((r = 1; r <= rounds; r++)); do
        for mode in quiet storm; do
            key="$load $mode"
            before=$(reloads)
            c0=$(cpu_ticks "$lb_pid")
            if [[ $mode == storm ]]; then
                rm -f "$tmp/stop"
                storm
            fi
            read -r a b c n <<<"$(wrk_run "$url" "$duration" "$lua")"
            if [[ $mode == storm ]]; then
                touch "$tmp/stop"
                wait "$storm_pid"
            fi
            us=$(awk -v t="$(($(cpu_ticks "$lb_pid") - c0))" -v hz="$clk_tck" -v n="$n" \
                'BEGIN { printf "%.2f", (n > 0 ? t * 1e6 / hz / n : 0) }')
            if [[ $mode == storm ]]; then
                write_set "${sets[0]}"
                kill -HUP "$lb_pid"
                sleep 0.3
            fi
            rps[$key]+=" $a"
            p99[$key]+=" $b"
            cpu[$key]+=" $us"
            errs[$key]=$((${errs[$key]:-0} + c))
            applied[$key]=$((${applied[$key]:-0} + $(reloads) - before))
            log "$key round $r/$rounds: $(fmt_int "$a") req/s, p99 $(fmt_ms "$b"), lb CPU $us µs/req, $c errors"
        done
    done
done

# Running, not exited (the first lb is this shell's child and stays a zombie until waited for).
alive() { [[ -e /proc/$1 ]] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null; }

upgrade_errors=0
upgrade_rps=""
for ((u = 1; u <= upgrades; u++)); do
    wrk_run "$url" "$duration" >"$tmp/wrk.out" &
    wrk_pid=$!
    sleep "$(awk -v d="${duration%s}" 'BEGIN { print d / 2 }')"
    kill -USR2 "$lb_pid"
    new=""
    for ((i = 0; i < 100 && ${#new} == 0; i++)); do
        sleep 0.1
        new=$(grep -o "as pid [0-9]*" "$lb_log" | awk -v u="$u" 'NR == u { print $3 }') || true
    done
    [[ -n $new ]] || die "upgrade $u: no new process logged: $(tail -5 "$lb_log")"
    pids+=("$new")
    wait "$wrk_pid"
    read -r a _ c _ <"$tmp/wrk.out"
    for ((i = 0; i < 100; i++)); do
        alive "$lb_pid" || break
        sleep 0.1
    done
    alive "$lb_pid" && die "upgrade $u: pid $lb_pid still runs: $(tail -5 "$lb_log")"
    upgrade_errors=$((upgrade_errors + c))
    upgrade_rps+=" $(fmt_int "$a")"
    log "upgrade $u: pid $lb_pid -> $new, $(fmt_int "$a") req/s, $c errors"
    lb_pid=$new
done

echo "## Runtime changes under load ($(date +%F))"
echo
echo "wrk -t$threads -c$connections -d$duration against lb (--workers $workers) in front of 4 demo backends, $rounds"
echo "alternating rounds, medians. A storm rewrites the backends file (one backend joins or"
echo "leaves) and sends SIGHUP every $interval ms for the whole run; SIGHUPs that arrive while"
echo "a reload is being read coalesce into one. lb CPU is its user + system time per answer."
echo
echo "| load | requests/s quiet / storm | ratio | p99 quiet / storm | lb CPU per request quiet / storm | errors quiet / storm | reloads applied per second |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for load in keep-alive close; do
    q=$(median "${rps[$load quiet]}")
    s=$(median "${rps[$load storm]}")
    per_second=$(awk -v n="${applied[$load storm]}" -v t="$((rounds * ${duration%s}))" \
        'BEGIN { printf "%.0f", n / t }')
    echo "| $load | $(fmt_int "$q") / $(fmt_int "$s") | $(ratio "$s" "$q") |" \
        "$(fmt_ms "$(median "${p99[$load quiet]}")") / $(fmt_ms "$(median "${p99[$load storm]}")") |" \
        "$(fmt_us "${cpu[$load quiet]}") / $(fmt_us "${cpu[$load storm]}") |" \
        "${errs[$load quiet]} / ${errs[$load storm]} | $per_second |"
done
if ((upgrades > 0)); then
    echo
    echo "$upgrades SIGUSR2 upgrades, each in the middle of a $duration keep-alive wrk run:"
    echo "$upgrade_errors wrk errors; requests/s of those runs:$upgrade_rps"
fi
