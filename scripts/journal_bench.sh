#!/usr/bin/env bash
# What the journal costs: POST fan-out to three backends with no journal and with
# --journal-sync off, batch and always, in alternating rounds of one run; then GET p99
# during a POST storm with no journal and with batch; and the disk's own fdatasync latency.
# Everything listens on 127.0.0.1 and is stopped on exit.  scripts/journal_bench.sh --help
set -euo pipefail

usage() {
    cat <<'TXT'
Usage: scripts/journal_bench.sh [options] > journal.md

Options:
  --rounds N        alternating rounds (default 3)
  --duration DUR    length of each wrk run (default 5s)
  --connections N   wrk connections for the POST load (default 50)
  --dir DIR         a directory on the disk you mean to measure; the journals go in a
                    fresh subdirectory, removed at the end (default target; /tmp may be
                    a tmpfs, where a sync costs nothing)
  --port N          first of the 10 loopback ports used (default 21000)
  --no-build        use target/release/{lb,backend} as they are
  -h, --help        this help

Needs wrk. Results (markdown) go to stdout, progress to stderr. wrk, lb and the three
backends share the machine's CPUs: compare the ratios, not the absolute figures.
TXT
}

log() { echo "journal_bench.sh: $*" >&2; }
die() { log "$*"; exit 1; }

rounds=3 duration=5s connections=50 dir=target port=21000 build=1
while [[ $# -gt 0 ]]; do
    case $1 in
        --rounds) rounds=$2; shift 2 ;;
        --duration) duration=$2; shift 2 ;;
        --connections) connections=$2; shift 2 ;;
        --dir) dir=$2; shift 2 ;;
        --port) port=$2; shift 2 ;;
        --no-build) build=0; shift ;;
        -h | --help) usage; exit 0 ;;
        *) log "unknown option $1"; usage >&2; exit 2 ;;
    esac
done

cd "$(dirname "$0")/.."
command -v wrk >/dev/null || die "wrk not found (Debian/Ubuntu: apt-get install wrk)"
((build)) && cargo build --release --bins >&2
tmp=$(mktemp -d)
mkdir -p "$dir"
work=$(mktemp -d "$dir/journal-bench.XXXXXX")
journal=$work/journal
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$tmp" "$work"
}
trap cleanup EXIT

backends=()
for i in 1 2 3; do
    addr=127.0.0.1:$((port + i))
    ./target/release/backend --listen "$addr" --name "b$i" 2>/dev/null &
    pids+=($!)
    backends+=(-b "$addr")
done
lb_addr=127.0.0.1:$port

# Starts lb with the given extra flags and waits until it answers.
lb_pid=""
start_lb() {
    rm -rf "$journal"
    ./target/release/lb -q -l "$lb_addr" --admin off "${backends[@]}" "$@" 2>"$tmp/lb.log" &
    lb_pid=$!
    pids+=("$lb_pid")
    for _ in $(seq 100); do
        (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
        sleep 0.05
    done
    cat "$tmp/lb.log" >&2
    die "lb did not start with $*"
}
stop_lb() {
    kill "$lb_pid" 2>/dev/null || true
    wait "$lb_pid" 2>/dev/null || true
}

cat >"$tmp/post.lua" <<'LUA'
-- POST /register with a new user name each request, a small form body.
local n = 0
local tag = "r"
function init(args) tag = args[1] or "r" end
function request()
    n = n + 1
    local body = "username=u" .. tag .. "n" .. n .. "&password=p"
    return wrk.format("POST", "/register", {
        ["Content-Type"] = "application/x-www-form-urlencoded" }, body)
end
LUA

# wrk's answered requests/s and p99 in ms: "RPS P99".
wrk_run() {
    local c=$1 script=$2 arg=$3 out
    out=$(wrk -t1 -c"$c" -d"$duration" --latency ${script:+-s "$script"} \
        "http://$lb_addr/" ${arg:+-- "$arg"} 2>&1) || { log "wrk failed: $out"; echo "0 0"; return; }
    echo "$out" | awk '
        function ms(v) {
            if (v ~ /us$/) return v / 1000
            if (v ~ /ms$/) return v + 0
            if (v ~ /s$/) return v * 1000
            return v
        }
        /^Requests\/sec:/ { rps = $2 }
        / requests in / { reqs = $1 }
        $1 == "99%" { p99 = ms($2) }
        /Non-2xx or 3xx responses:/ { bad = $NF }
        /Socket errors:/ { gsub(/,/, ""); bad += $4 + $6 + $8 + $10 }
        END { printf "%.0f %.3f\n", (reqs > 0 ? rps * (reqs - bad) / reqs : 0), p99 }'
}

median() {
    tr ' ' '\n' <<<"$*" | grep -v '^$' | sort -g |
        awk '{ v[NR] = $1 } END { if (NR == 0) print 0; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

configs=(none off batch always)
flags_for() {
    case $1 in
        none) echo "" ;;
        *) echo "--journal $journal --journal-sync $1" ;;
    esac
}

declare -A rps p99 get_p99 get_rps
log "POST fan-out to three backends, $rounds rounds of $duration"
for r in $(seq "$rounds"); do
    for c in "${configs[@]}"; do
        # shellcheck disable=SC2046
        start_lb $(flags_for "$c")
        read -r a b <<<"$(wrk_run "$connections" "$tmp/post.lua" "$c$r")"
        stop_lb
        rps[$c]+=" $a" p99[$c]+=" $b"
        log "  round $r  $c: $a POST/s, p99 $b ms"
    done
done

log "GET p99 during a POST storm, $rounds rounds"
for r in $(seq "$rounds"); do
    for c in none batch; do
        # shellcheck disable=SC2046
        start_lb $(flags_for "$c")
        wrk -t1 -c"$connections" -d"$duration" -s "$tmp/post.lua" "http://$lb_addr/" -- "s$c$r" \
            >/dev/null 2>&1 &
        storm=$!
        sleep 0.5
        read -r a b <<<"$(wrk_run 10 "" "")"
        wait "$storm" || true
        stop_lb
        get_rps[$c]+=" $a" get_p99[$c]+=" $b"
        log "  round $r  $c: GET $a/s, p99 $b ms"
    done
done

log "the disk's own fdatasync latency (dd oflag=dsync, 1000 x 4 KiB)"
dd_out=$(dd if=/dev/zero of="$work/dd" bs=4k count=1000 oflag=dsync 2>&1 | tail -n 1)
dd_secs=$(awk '{ for (i = 1; i < NF; i++) if ($(i + 1) ~ /^s,?$/) print $i }' <<<"$dd_out" | head -n 1)
sync_us=$(awk -v s="${dd_secs:-0}" 'BEGIN { printf "%.0f", s * 1e6 / 1000 }')

base=$(median "${rps[none]}")
echo "### POST fan-out to three backends (medians of $rounds rounds, wrk -t1 -c$connections -d$duration)"
echo
echo "| journal | POST/s | of no journal | p99 |"
echo "|---|---:|---:|---:|"
for c in "${configs[@]}"; do
    m=$(median "${rps[$c]}")
    pct=$(awk -v m="$m" -v b="$base" 'BEGIN { printf "%.0f%%", (b > 0 ? 100 * m / b : 0) }')
    label=$([[ $c == none ]] && echo "none" || echo "--journal-sync $c")
    echo "| $label | $m | $pct | $(median "${p99[$c]}") ms |"
done
echo
echo "### GET during a POST storm (wrk -t1 -c10 GET beside wrk -t1 -c$connections POST)"
echo
echo "| journal | GET/s | GET p99 |"
echo "|---|---:|---:|"
for c in none batch; do
    label=$([[ $c == none ]] && echo "none" || echo "--journal-sync batch")
    echo "| $label | $(median "${get_rps[$c]}") | $(median "${get_p99[$c]}") ms |"
done
ratio=$(awk -v a="$(median "${get_p99[batch]}")" -v b="$(median "${get_p99[none]}")" \
    'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
echo
echo "GET p99 with the journal / without: $ratio. The disk's own fdatasync: ${sync_us} µs"
echo "(dd oflag=dsync of 4 KiB blocks in $dir: $dd_out)."
