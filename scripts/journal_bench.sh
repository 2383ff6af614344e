#!/usr/bin/env bash
# What the journal costs: POST fan-out to three backends with no journal, with
# --journal-sync off, batch and always, and with the PostgreSQL store (a server of its own,
# started here), in alternating rounds of one run; then GET p99 during a POST storm (as
# many POSTs as lb takes, and a paced one every configuration keeps up with) with no
# journal, with batch and with PostgreSQL, against GET p99 with no storm; PostgreSQL's
# commits per second and POSTs per commit (pg_stat_database); and the disk's own fdatasync
# latency. Everything listens on 127.0.0.1 and is stopped on exit.
# scripts/journal_bench.sh --help
set -euo pipefail

usage() {
    cat <<'TXT'
Usage: scripts/journal_bench.sh [options] > journal.md

Options:
  --rounds N        alternating rounds (default 3)
  --duration DUR    length of each wrk run (default 5s)
  --connections N   wrk connections for the POST load (default 50)
  --paced N         the paced storm's POSTs per second (default 3000): each connection
                    waits connections/N s before each POST
  --dir DIR         a directory on the disk you mean to measure; the journals go in a
                    fresh subdirectory, removed at the end (default target; /tmp may be
                    a tmpfs, where a sync costs nothing)
  --port N          first of the 10 loopback ports used (default 21000); PostgreSQL
                    listens on the last of them
  --no-postgres     leave out the PostgreSQL store's rows
  --baseline PATH   also measure the PostgreSQL store with this lb binary (an earlier
                    build), in the same alternating rounds, as the row "baseline"; it
                    has a database of its own, as its schema may be older
  --no-build        use target/release/{lb,backend} as they are
  -h, --help        this help

Needs wrk. The PostgreSQL rows need Debian's server binaries (apt-get install postgresql;
the newest /usr/lib/postgresql/*/bin is used) and are skipped, with a message, without
them. Its cluster is made by initdb in the fresh subdirectory of --dir, so that its WAL
flushes go to the same disk as the journal's syncs (fsync and synchronous_commit on, as
in production), and runs as nobody when the script runs as root. Results (markdown) go to
stdout, progress to stderr. wrk, lb, PostgreSQL and the three backends share the
machine's CPUs: compare the ratios, not the absolute figures.
TXT
}

log() { echo "journal_bench.sh: $*" >&2; }
die() { log "$*"; exit 1; }

rounds=3 duration=5s connections=50 dir=target port=21000 build=1 postgres=1 baseline=""
paced=3000
while [[ $# -gt 0 ]]; do
    case $1 in
        --rounds) rounds=$2; shift 2 ;;
        --duration) duration=$2; shift 2 ;;
        --connections) connections=$2; shift 2 ;;
        --paced) paced=$2; shift 2 ;;
        --dir) dir=$2; shift 2 ;;
        --port) port=$2; shift 2 ;;
        --no-postgres) postgres=0; shift ;;
        --baseline) baseline=$2; shift 2 ;;
        --no-build) build=0; shift ;;
        -h | --help) usage; exit 0 ;;
        *) log "unknown option $1"; usage >&2; exit 2 ;;
    esac
done

[[ $rounds =~ ^[1-9][0-9]*$ ]] || die "bad --rounds: $rounds"
[[ $connections =~ ^[1-9][0-9]*$ ]] || die "bad --connections: $connections"
[[ $paced =~ ^[1-9][0-9]*$ ]] || die "bad --paced: $paced"
[[ $duration =~ ^([1-9][0-9]*)([sm]?)$ ]] || die "bad --duration: $duration (e.g. 5s, 1m)"
secs=${BASH_REMATCH[1]}
[[ ${BASH_REMATCH[2]} != m ]] || secs=$((secs * 60))
[[ -z $baseline || -x $baseline ]] || die "--baseline $baseline is not an executable"
[[ -z $baseline ]] || baseline=$(cd "$(dirname "$baseline")" && pwd)/$(basename "$baseline")

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || die "wrk not found (Debian/Ubuntu: apt-get install wrk)"
((build)) && cargo build --release --bins >&2
tmp=$(mktemp -d)
mkdir -p "$dir"
work=$(mktemp -d "$dir/journal-bench.XXXXXX")
work=$(cd "$work" && pwd) # absolute: PostgreSQL takes its paths from its data directory
journal=$work/journal
pids=()
pg_pid=""
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    if [[ -n $pg_pid ]]; then
        # A fast shutdown: PostgreSQL cuts its clients off and exits; killed after 10 s.
        kill -INT "$pg_pid" 2>/dev/null || true
        for _ in $(seq 100); do
            kill -0 "$pg_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pg_pid" 2>/dev/null || true
    fi
    wait 2>/dev/null || true
    rm -rf "$tmp" "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# PostgreSQL: the newest installed server, a cluster of its own in $work/pg, on the last of
# the 10 ports. It refuses to run as root, so as root it runs as nobody (as in the tests,
# tests/common/postgres.rs).
pg_bin="" pg_port=$((port + 9)) pg_url=""
if ((postgres)); then
    pg_bin=$(for d in /usr/lib/postgresql/*/bin; do
        [[ -x $d/postgres && -x $d/initdb && -x $d/psql ]] && echo "$d"
    done | sort -V | tail -n 1)
    if [[ -z $pg_bin ]]; then
        log "PostgreSQL is not installed (/usr/lib/postgresql/*/bin): skipping its rows" \
            "(Debian/Ubuntu: apt-get install postgresql)"
        postgres=0
    fi
fi
# What runs PostgreSQL's programs as nobody when we are root; setpriv and env exec, so that
# $! of a server started in the background is the server itself.
as_pg=()
((EUID != 0)) ||
    as_pg=(setpriv --reuid="$(id -u nobody)" --regid="$(id -g nobody)" --clear-groups env HOME=/tmp)
# One value from the benchmark's database (or database $2).
psql_value() {
    "$pg_bin/psql" -X -At -h 127.0.0.1 -p "$pg_port" -U lb -d "${2:-postgres}" -c "$1"
}
start_postgres() {
    (echo >"/dev/tcp/127.0.0.1/$pg_port") 2>/dev/null && die "port $pg_port is taken (try --port)"
    mkdir "$work/pg"
    chmod 755 "$work"
    ((EUID != 0)) || chown nobody: "$work/pg"
    "${as_pg[@]}" "$pg_bin/initdb" -A trust -U lb -D "$work/pg/data" >"$tmp/initdb.log" 2>&1 || {
        cat "$tmp/initdb.log" >&2
        die "initdb failed"
    }
    "${as_pg[@]}" "$pg_bin/postgres" -D "$work/pg/data" -p "$pg_port" -k "$work/pg" \
        -c listen_addresses=127.0.0.1 -c track_wal_io_timing=on </dev/null 2>"$tmp/pg.log" &
    pg_pid=$!
    for _ in $(seq 300); do
        psql_value "SELECT 1" >/dev/null 2>&1 && break
        kill -0 "$pg_pid" 2>/dev/null || break
        sleep 0.1
    done
    psql_value "SELECT 1" >/dev/null 2>&1 || {
        cat "$tmp/pg.log" >&2
        die "PostgreSQL did not start on 127.0.0.1:$pg_port"
    }
    pg_url="postgres://lb@127.0.0.1:$pg_port/postgres?instance=bench"
    log "PostgreSQL $("$pg_bin/postgres" --version | awk '{ print $3 }') on 127.0.0.1:$pg_port," \
        "data in $work/pg (fsync on, synchronous_commit on)"
}
((postgres)) && start_postgres
if ((postgres)) && [[ -n $baseline ]]; then
    psql_value "CREATE DATABASE baseline" >/dev/null
fi

backends=()
for i in 1 2 3; do
    addr=127.0.0.1:$((port + i))
    ./target/release/backend --listen "$addr" --name "b$i" 2>/dev/null &
    pids+=($!)
    backends+=(-b "$addr")
done
lb_addr=127.0.0.1:$port

# Starts lb (the binary $lb_bin) with the given extra flags and waits until it answers.
lb_pid="" lb_bin=./target/release/lb
start_lb() {
    rm -rf "$journal"
    "$lb_bin" -q -l "$lb_addr" --admin off "${backends[@]}" "$@" 2>"$tmp/lb.log" &
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

# PostgreSQL's counters for database $1: "COMMITS WAL_SYNCS WAL_SYNC_MS" (the WAL's are
# the server's). A backend reports its counts when it exits, so this waits for lb's
# sessions to be gone first.
pg_counters() {
    for _ in $(seq 50); do
        [[ $(psql_value "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'lb'") == 0 ]] &&
            break
        sleep 0.1
    done
    echo "$(psql_value "SELECT d.xact_commit, w.wal_sync, round(w.wal_sync_time::numeric, 3),
        w.wal_bytes FROM pg_stat_database d, pg_stat_wal w WHERE d.datname = '$1'" | tr '|' ' ')" \
        "$(pg_cpu_ticks)"
}
# CPU time (clock ticks) of the PostgreSQL server: the postmaster's own and its children's,
# those that exited (lb's backends, once it stops) and those running.
pg_cpu_ticks() {
    local f rest total=0
    local -a v
    for f in /proc/[0-9]*/stat; do
        rest=$(cat "$f" 2>/dev/null) || continue
        # Fields after the ")" that ends the command name: state, ppid, ... utime (12th),
        # stime, cutime, cstime.
        read -r -a v <<<"${rest##*) }"
        if [[ $f == "/proc/$pg_pid/stat" ]]; then
            total=$((total + v[11] + v[12] + v[13] + v[14]))
        elif [[ ${v[1]} == "$pg_pid" ]]; then
            total=$((total + v[11] + v[12]))
        fi
    done
    echo "$total"
}
clock_ticks=$(getconf CLK_TCK)

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
# The paced storm's: each connection waits $pause_ms before each POST.
pause_ms=$(awk -v c="$connections" -v n="$paced" 'BEGIN { printf "%.3f", c * 1000 / n }')
{
    cat "$tmp/post.lua"
    echo "function delay() return $pause_ms end"
} >"$tmp/paced.lua"
cp "$tmp/post.lua" "$tmp/flood.lua"

# wrk's answered requests/s, p99 in ms and answered requests: "RPS P99 ANSWERED".
wrk_run() {
    local c=$1 script=$2 arg=$3 out
    out=$(wrk -t1 -c"$c" -d"$duration" --latency ${script:+-s "$script"} \
        "http://$lb_addr/" ${arg:+-- "$arg"} 2>&1) || { log "wrk failed: $out"; echo "0 0 0"; return; }
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
        END { printf "%.0f %.3f %d\n", (reqs > 0 ? rps * (reqs - bad) / reqs : 0), p99, reqs - bad }'
}

median() {
    tr ' ' '\n' <<<"$*" | grep -v '^$' | sort -g |
        awk '{ v[NR] = $1 } END { if (NR == 0) print 0; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# "MIN-MAX" of a list.
range() {
    tr ' ' '\n' <<<"$*" | grep -v '^$' | sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { print lo "-" hi }'
}
pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f%%", (b > 0 ? 100 * a / b : 0) }'; }

configs=(none off batch always)
((postgres)) && configs+=(postgres)
((postgres)) && [[ -n $baseline ]] && configs+=(baseline)
# Sets `flags` to lb's flags for a configuration, and `lb_bin` to the lb that runs it.
set_flags() {
    lb_bin=./target/release/lb
    case $1 in
        none) flags=() ;;
        postgres) flags=(--journal "$pg_url") ;;
        baseline) flags=(--journal "${pg_url/\/postgres\?//baseline?}") lb_bin=$baseline ;;
        *) flags=(--journal "$journal" --journal-sync "$1") ;;
    esac
}
label_of() {
    case $1 in
        none) echo "none" ;;
        postgres) echo "PostgreSQL store" ;;
        baseline) echo "PostgreSQL store, baseline lb" ;;
        *) echo "\`--journal-sync $1\`" ;;
    esac
}
is_pg() { [[ $1 == postgres || $1 == baseline ]]; }
db_of() { [[ $1 == baseline ]] && echo baseline || echo postgres; }

declare -A rps p99 get_p99 get_rps commits_s per_commit wal_s wal_ms wal_post cpu_post
log "POST fan-out to three backends, $rounds rounds of $duration"
for r in $(seq "$rounds"); do
    for c in "${configs[@]}"; do
        set_flags "$c"
        ! is_pg "$c" || read -r c0 w0 t0 b0 u0 <<<"$(pg_counters "$(db_of "$c")")"
        start_lb "${flags[@]}"
        read -r a b n <<<"$(wrk_run "$connections" "$tmp/post.lua" "$c$r")"
        stop_lb
        rps[$c]+=" $a" p99[$c]+=" $b"
        log "  round $r  $c: $a POST/s, p99 $b ms"
        if is_pg "$c"; then
            read -r c1 w1 t1 b1 u1 <<<"$(pg_counters "$(db_of "$c")")"
            read -r wb cpu < <(awk -v n="$n" -v b=$((b1 - b0)) -v u=$((u1 - u0)) -v hz="$clock_ticks" \
                'BEGIN { printf "%.0f %.0f\n", (n > 0 ? b / n : 0), (n > 0 ? u * 1e6 / hz / n : 0) }')
            wal_post[$c]+=" $wb" cpu_post[$c]+=" $cpu"
            read -r cs pc ws wm < <(awk -v c=$((c1 - c0)) -v n="$n" -v s="$secs" \
                -v w=$((w1 - w0)) -v t="$(awk -v a="$t1" -v b="$t0" 'BEGIN { print a - b }')" \
                'BEGIN { printf "%.0f %.1f %.0f %.3f\n", c / s, (c > 0 ? n / c : 0), w / s, (w > 0 ? t / w : 0) }')
            commits_s[$c]+=" $cs" per_commit[$c]+=" $pc" wal_s[$c]+=" $ws" wal_ms[$c]+=" $wm"
            log "    PostgreSQL: $((c1 - c0)) commits ($cs/s, $pc POSTs each)," \
                "$((w1 - w0)) WAL syncs ($ws/s, $wm ms each), $wb WAL bytes and $cpu µs of" \
                "its CPU per POST," \
                "$(psql_value "SELECT count(*) FROM lb_copies" "$(db_of "$c")") copies left owed"
        fi
    done
done

# The GETs run inside the storm: it starts half a second before and ends half a second
# after. A flood is as many POSTs as lb takes, so a journal that takes more POSTs also takes
# more of the CPUs the GETs need; a paced storm is the same POSTs for every configuration.
storm_configs=(none batch)
((postgres)) && storm_configs+=(postgres)
((postgres)) && [[ -n $baseline ]] && storm_configs+=(baseline)
storms=()
for c in "${storm_configs[@]}"; do storms+=("$c/flood" "$c/paced"); done
quiet=$( ((postgres)) && echo postgres || echo batch)
declare -A storm_rps
log "GET p99 during a POST storm (a flood, and paced at $paced POST/s) and without one," \
    "$rounds rounds"
for r in $(seq "$rounds"); do
    for s in "${storms[@]}" quiet; do
        c=${s%/*}
        set_flags "$([[ $s == quiet ]] && echo "$quiet" || echo "$c")"
        start_lb "${flags[@]}"
        storm=""
        if [[ $s != quiet ]]; then
            wrk -t1 -c"$connections" -d$((secs + 1))s -s "$tmp/${s#*/}.lua" \
                "http://$lb_addr/" -- "s${s/\//}$r" >"$tmp/storm.txt" 2>&1 &
            storm=$!
            sleep 0.5
        fi
        read -r a b _ <<<"$(wrk_run 10 "" "")"
        if [[ -n $storm ]]; then
            wait "$storm" || true
            storm_rps[$s]+=" $(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' "$tmp/storm.txt")"
        fi
        stop_lb
        get_rps[$s]+=" $a" get_p99[$s]+=" $b"
        log "  round $r  $s: GET $a/s, p99 $b ms"
    done
done

log "the disk's own fdatasync latency (dd oflag=dsync, 1000 x 4 KiB)"
dd_out=$(dd if=/dev/zero of="$work/dd" bs=4k count=1000 oflag=dsync 2>&1 | tail -n 1)
dd_secs=$(awk '{ for (i = 1; i < NF; i++) if ($(i + 1) ~ /^s,?$/) print $i }' <<<"$dd_out" | head -n 1)
sync_us=$(awk -v s="${dd_secs:-0}" 'BEGIN { printf "%.0f", s * 1e6 / 1000 }')

base=$(median "${rps[none]}")
batch=$(median "${rps[batch]}")
echo "### POST fan-out to three backends (medians of $rounds rounds, wrk -t1 -c$connections -d$duration)"
echo
echo "| journal | POST/s | range | of none | of \`batch\` | p99 |"
echo "|---|---:|---:|---:|---:|---:|"
for c in "${configs[@]}"; do
    m=$(median "${rps[$c]}")
    echo "| $(label_of "$c") | $m | $(range "${rps[$c]}") | $(pct "$m" "$base") | $(pct "$m" "$batch") |" \
        "$(median "${p99[$c]}") ms |"
done
echo
if ((postgres)); then
    share=$(awk -v a="$(median "${rps[postgres]}")" -v b="$batch" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
    echo "PostgreSQL store / \`batch\`: $share (goal: at least 0.50," \
        "$(awk -v s="$share" 'BEGIN { print (s >= 0.5 ? "met" : "not met") }'))."
    if [[ -n $baseline ]]; then
        echo "Per round, PostgreSQL store / \`batch\`:" \
            "$(paste -d/ <(tr ' ' '\n' <<<"${rps[postgres]# }") <(tr ' ' '\n' <<<"${rps[batch]# }") |
                awk -F/ '{ printf "%s%.2f", (NR > 1 ? ", " : ""), ($2 > 0 ? $1 / $2 : 0) }');" \
            "baseline lb / \`batch\`:" \
            "$(paste -d/ <(tr ' ' '\n' <<<"${rps[baseline]# }") <(tr ' ' '\n' <<<"${rps[batch]# }") |
                awk -F/ '{ printf "%s%.2f", (NR > 1 ? ", " : ""), ($2 > 0 ? $1 / $2 : 0) }')." \
            "Baseline lb: $baseline."
    fi
    echo
    echo "### PostgreSQL during the POST runs (pg_stat_database, pg_stat_wal)"
    echo
    echo "| lb | commits/s | range | POSTs per commit | range | WAL syncs/s | range | mean WAL sync | range | WAL bytes per POST | PostgreSQL CPU per POST |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    for c in "${configs[@]}"; do
        is_pg "$c" || continue
        echo "| $(label_of "$c") | $(median "${commits_s[$c]}") | $(range "${commits_s[$c]}") |" \
            "$(median "${per_commit[$c]}") | $(range "${per_commit[$c]}") |" \
            "$(median "${wal_s[$c]}") | $(range "${wal_s[$c]}") |" \
            "$(median "${wal_ms[$c]}") ms | $(range "${wal_ms[$c]}") ms |" \
            "$(median "${wal_post[$c]}") | $(median "${cpu_post[$c]}") µs |"
    done
    echo
    echo "Commits include lb's lease renewals (a few a second) and its start. PostgreSQL's CPU is" \
        "every process of its server, from /proc, over the run and lb's stop."
else
    echo "PostgreSQL store: skipped (not installed, or --no-postgres)."
fi
echo
echo "### GET during a POST storm (wrk -t1 -c10 GET beside wrk -t1 -c$connections POST)"
echo
echo "A flood is as many POSTs as lb takes; a paced storm waits ${pause_ms} ms between a" \
    "connection's POSTs, $paced POST/s offered."
echo
quiet_p99=$(median "${get_p99[quiet]}")
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
echo "| journal | POST storm | its POST/s | GET/s | GET p99 | range | of no storm |"
echo "|---|---|---:|---:|---:|---:|---:|"
for s in "${storms[@]}" quiet; do
    if [[ $s == quiet ]]; then
        label="$(label_of "$quiet") | none | -"
    else
        label="$(label_of "${s%/*}") | ${s#*/} | $(median "${storm_rps[$s]}")"
    fi
    m=$(median "${get_p99[$s]}")
    echo "| $label | $(median "${get_rps[$s]}") | $m ms | $(range "${get_p99[$s]}") ms |" \
        "$(ratio "$m" "$quiet_p99") |"
done
echo
if ((postgres)); then
    for kind in flood paced; do
        g=$(ratio "$(median "${get_p99[postgres/$kind]}")" "$quiet_p99")
        n=$(ratio "$(median "${get_p99[postgres/$kind]}")" "$(median "${get_p99[none/$kind]}")")
        echo "GET p99 beside the $kind with the PostgreSQL store / without a storm: $g (goal:" \
            "at most 1.5, $(awk -v g="$g" 'BEGIN { print (g <= 1.5 ? "met" : "not met") }'));" \
            "/ beside the same $kind with no journal: $n."
    done
fi
echo "The disk's own fdatasync: ${sync_us} µs (dd oflag=dsync of 4 KiB blocks in $dir: $dd_out)."
echo "Load average (1, 5, 15 min) at the start: $load_start; at the end:" \
    "$(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) CPUs)."
