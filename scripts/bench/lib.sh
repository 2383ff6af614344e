# Shared by the benchmark scripts (scripts/compare.sh and the others in scripts/): finding
# tools, free ports, starting and stopping processes, running wrk, medians and markdown
# tables, and nginx and HAProxy configurations. Source it after setting `script` (the
# script's name for messages); it sets up a temporary directory and cleans up on exit.
# shellcheck shell=bash

log() { echo "$script: $*" >&2; }
die() {
    log "$*"
    exit 1
}
die_usage() {
    log "$*"
    echo "Try scripts/$script --help" >&2
    exit 2
}
need_arg() { [[ $# -ge 2 && -n $2 ]] || die_usage "$1 needs a value"; }
positive() { [[ $1 =~ ^[0-9]+$ ]] && ((10#$1 > 0)); }

bench_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

# Tools. nginx and haproxy live in sbin, which is not always on PATH.
find_tool() {
    local d
    if command -v "$1" 2>/dev/null; then
        return 0
    fi
    for d in /usr/sbin /usr/local/sbin /sbin; do
        if [[ -x $d/$1 ]]; then
            echo "$d/$1"
            return 0
        fi
    done
    return 1
}

# File descriptors: thousands of idle clients need as many in each proxy. Raise the soft
# limit as far as the hard limit allows; children inherit it.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
nofile=$(ulimit -n)
[[ $nofile == unlimited ]] && nofile=1048576

tmp=$(mktemp -d "${TMPDIR:-/tmp}/lb-bench.XXXXXX")
# nginx workers drop to an unprivileged user when started as root: let them reach their files.
chmod 755 "$tmp"

pids=()
# Sends TERM to the given processes (all started here), KILL to any still there after 5 s.
terminate() {
    local pid i alive
    for pid in "$@"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for ((i = 0; i < 50; i++)); do
        alive=0
        for pid in "$@"; do
            kill -0 "$pid" 2>/dev/null && alive=1
        done
        ((alive)) || break
        sleep 0.1
    done
    for pid in "$@"; do
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
}
cleanup() {
    trap - EXIT INT TERM
    terminate "${pids[@]}"
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Stops one process this script started and forgets it.
stop() {
    local pid=$1 p keep=()
    terminate "$pid"
    for p in "${pids[@]}"; do
        [[ $p == "$pid" ]] || keep+=("$p")
    done
    pids=("${keep[@]}")
}

# Prints N free TCP ports on 127.0.0.1, below the ephemeral range so that outgoing
# connections do not take them in the meantime; in FROM-TO if given.
free_ports() {
    python3 - "$1" "${2:-20000-32000}" <<'PY'
import random, socket, sys
n = int(sys.argv[1])
low, high = map(int, sys.argv[2].split("-"))
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
    if len(found) == n:
        break
print(" ".join(map(str, found)))
PY
}

# Dies with a usage error unless RANGE (a --ports value) is FROM-TO with FROM < TO;
# EXAMPLE goes in the message.
check_port_range() {
    [[ $1 =~ ^([0-9]+)-([0-9]+)$ ]] && ((BASH_REMATCH[1] < BASH_REMATCH[2])) ||
        die_usage "bad --ports: $1 (e.g. $2)"
}

# Sets the array `ports` to N free loopback ports from RANGE, or dies.
take_ports() {
    read -r -a ports <<<"$(free_ports "$1" "$2")"
    ((${#ports[@]} == $1)) || die "not $1 free ports in $2"
}

# True when 127.0.0.1:PORT answers GET PATH with a 2xx.
http_ok() {
    local port=$1 path=${2:-/} fd line
    # The braces scope 2>/dev/null to the failed connect; exec alone would keep it.
    { exec {fd}<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null || return 1
    printf 'GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' "$path" 1>&"$fd" || {
        exec {fd}>&-
        return 1
    }
    line=""
    IFS= read -r -t 3 line <&"$fd" || true
    exec {fd}>&-
    [[ $line == "HTTP/1."[01]" 2"* ]]
}

# Prints the whole answer to GET PATH on 127.0.0.1:PORT (for diagnostics).
http_get() {
    local port=$1 path=$2 fd
    { exec {fd}<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null || return 0
    printf 'GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' "$path" 1>&"$fd" || true
    timeout 3 cat <&"$fd" || true
    exec {fd}>&-
}

# Waits until PID serves GET / on PORT; on failure shows its log and exits.
wait_ready() {
    local name=$1 pid=$2 port=$3 logf=$4 i
    for ((i = 0; i < 100; i++)); do
        if ! kill -0 "$pid" 2>/dev/null; then
            log "$name exited at start; its log:"
            sed 's/^/    /' "$logf" >&2
            exit 1
        fi
        if http_ok "$port"; then
            return 0
        fi
        sleep 0.1
    done
    log "$name does not answer on 127.0.0.1:$port after 10s; its log:"
    sed 's/^/    /' "$logf" >&2
    exit 1
}

# Children of a process, from /proc.
children_of() {
    local stat rest ppid
    for stat in /proc/[0-9]*/stat; do
        # Fields after the ")" that ends the command name: state, ppid, ...
        rest=$(cat "$stat" 2>/dev/null) || continue
        rest=${rest##*) }
        read -r _ ppid _ <<<"$rest"
        if [[ $ppid == "$1" ]]; then
            stat=${stat#/proc/}
            echo "${stat%/stat}"
        fi
    done
}

# Resident memory in KiB of the given processes together.
rss_kib() {
    local pid total=0 v
    for pid in "$@"; do
        v=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status" 2>/dev/null || true)
        total=$((total + ${v:-0}))
    done
    echo "$total"
}

# The processes that make up a proxy: the one started, and for nginx its workers too.
proxy_pids() {
    if [[ $1 == nginx* ]]; then
        # shellcheck disable=SC2046  # one pid per word
        echo "$2" $(children_of "$2")
    else
        echo "$2"
    fi
}

# CPU time (user + system, in clock ticks) the given processes have used so far.
cpu_ticks() {
    local pid total=0 stat
    for pid in "$@"; do
        stat=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
        # Fields after the ")" that ends the command name; utime and stime are 12th and 13th.
        read -r -a f <<<"${stat##*) }"
        total=$((total + f[11] + f[12]))
    done
    echo "$total"
}
clk_tck=$(getconf CLK_TCK 2>/dev/null || echo 100)

# wrk's settings for the runs that follow; a section may change them.
wrk_bin=""
threads=1
connections=50
# Runs wrk against URL for SECS, with an optional Lua SCRIPT and its argument;
# prints "requests/s p99_ms errors answered_requests".
wrk_run() {
    local url=$1 secs=$2 script=${3:-} arg=${4:-} out cmd
    cmd=("$wrk_bin" -t"$threads" -c"$connections" -d"$secs" --latency)
    [[ -z $script ]] || cmd+=(-s "$script")
    cmd+=("$url")
    [[ -z $arg ]] || cmd+=(-- "$arg")
    out=$("${cmd[@]}" 2>&1) || {
        log "wrk failed against $url:"
        printf "%s\n" "$out" | sed "s/^/    /" >&2
        echo "0 0 1 0"
        return 0
    }
    if grep -qE 'Socket errors|Non-2xx' <<<"$out"; then
        log "    wrk against $url: $(grep -E 'requests in|Socket errors|Non-2xx' <<<"$out" | tr -s ' ' | tr '\n' ';')"
    fi
    # Requests/s counts failed requests too; only the answered ones are reported.
    echo "$out" | awk '
        function ms(v) {
            if (v ~ /us$/) return v / 1000
            if (v ~ /ms$/) return v + 0
            if (v ~ /m$/) return v * 60000
            if (v ~ /s$/) return v * 1000
            return v
        }
        /^Requests\/sec:/ { rps = $2 }
        / requests in / { reqs = $1 }
        $1 == "99%" { p99 = ms($2) }
        /Socket errors:/ { gsub(/,/, ""); errs += $4 + $6 + $8 + $10 }
        /Non-2xx or 3xx responses:/ { errs += $NF }
        END {
            ok = reqs > 0 ? rps * (reqs - errs) / reqs : 0
            answered = reqs - errs
            printf "%.0f %.3f %d %d\n", ok < 0 ? 0 : ok, p99, errs, answered < 0 ? 0 : answered
        }'
}

median() {
    tr ' ' '\n' <<<"$*" | grep -v '^$' | sort -g | awk '
        { v[NR] = $1 }
        END {
            if (NR == 0) { print 0; exit }
            if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2
        }'
}

# Formatting for the tables.
fmt_int() { printf '%.0f' "$1"; }
# The median of a list of µs figures, or "-" for none.
fmt_us() {
    if [[ -z ${1// /} ]]; then
        echo "-"
    else
        awk -v v="$(median "$1")" 'BEGIN { printf "%.1f µs", v }'
    fi
}
fmt_ms() { awk -v v="$1" 'BEGIN { if (v < 10) printf "%.2f ms", v; else printf "%.1f ms", v }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }

# Per-target results: space-separated lists of per-round values.
declare -A RPS P99 ERRS CPU LABEL BASE URL LOGF PIDS SCRIPT
rounds=5
duration=5s
# Benchmarks the targets named in $@ (keys of URL) in alternating rounds. A target with a
# SCRIPT entry runs wrk with that Lua script, whose argument names the target and round.
bench_alternating() {
    local t r res rps p99 errs answered c0 cpu
    for t in "$@"; do
        RPS[$t]="" P99[$t]="" ERRS[$t]=0 CPU[$t]=""
        log "  warm-up: ${LABEL[$t]}"
        wrk_run "${URL[$t]}" 1s "${SCRIPT[$t]:-}" "${t}w" >/dev/null
    done
    for ((r = 1; r <= rounds; r++)); do
        for t in "$@"; do
            # shellcheck disable=SC2086  # a list of pids
            c0=$(cpu_ticks ${PIDS[$t]:-})
            res=$(wrk_run "${URL[$t]}" "$duration" "${SCRIPT[$t]:-}" "$t$r")
            read -r rps p99 errs answered <<<"$res"
            RPS[$t]+=" $rps"
            P99[$t]+=" $p99"
            ERRS[$t]=$((ERRS[$t] + errs))
            cpu=""
            if [[ -n ${PIDS[$t]:-} ]] && ((answered > 0)); then
                # shellcheck disable=SC2086
                cpu=$(awk -v t="$(($(cpu_ticks ${PIDS[$t]}) - c0))" -v hz="$clk_tck" -v n="$answered" \
                    'BEGIN { printf "%.2f", t * 1e6 / hz / n }')
                CPU[$t]+=" $cpu"
            fi
            log "  round $r/$rounds  $(printf '%-28s' "${LABEL[$t]}") $(fmt_int "$rps") req/s  p99 $(fmt_ms "$p99")" \
                "${cpu:+ proxy CPU $cpu µs/req } errors $errs"
            if ((errs > 0)) && [[ -s ${LOGF[$t]:-} ]]; then
                log "    last lines of its log:"
                tail -n 3 "${LOGF[$t]}" | sed 's/^/      /' >&2
            fi
        done
    done
}

# Markdown rows for the targets, with medians.
table() {
    local t
    echo "| target | requests/s | p99 latency | proxy CPU per request | errors (all rounds) |"
    echo "|---|---:|---:|---:|---:|"
    for t in "$@"; do
        echo "| ${LABEL[$t]} | $(fmt_int "$(median "${RPS[$t]}")") | $(fmt_ms "$(median "${P99[$t]}")") |" \
            "$(fmt_us "${CPU[$t]}") | ${ERRS[$t]} |"
    done
}

# "LB/X" ratio rows for each X in the rest: requests/s (higher is better for lb), p99 and
# proxy CPU per request (lower is better for lb).
ratio_rows() {
    local lb=$1 t
    shift
    for t in "$@"; do
        [[ -n ${URL[$t]:-} ]] || continue
        echo "| ${LABEL[$lb]%% (*} / ${LABEL[$t]%% (*} | $(ratio "$(median "${RPS[$lb]}")" "$(median "${RPS[$t]}")") |" \
            "$(ratio "$(median "${P99[$lb]}")" "$(median "${P99[$t]}")") |" \
            "$(ratio "$(median "${CPU[$lb]}")" "$(median "${CPU[$t]}")") |"
    done
}

# A section's results, then lb's ratios to the others (targets after the first two).
results_table() {
    local lb=$2
    table "$@"
    echo
    if (($# > 2)); then
        echo "| ratio | requests/s | p99 latency | proxy CPU per request |"
        echo "|---|---:|---:|---:|"
        ratio_rows "$lb" "${@:3}"
        echo
    fi
}
