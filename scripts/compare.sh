#!/usr/bin/env bash
# lb next to nginx and HAProxy on this machine, in one run: HTTP keep-alive throughput and
# p99, TCP pass-through, memory per idle connection, and POST fan-out against GET.
# Everything listens on 127.0.0.1 and is stopped on exit.  scripts/compare.sh --help
set -euo pipefail

usage() {
    cat <<'TXT'
Usage: scripts/compare.sh [options] > results.md

Builds lb (cargo build --release), starts two demo backends on free loopback ports, and
puts the same wrk load through each of:
  - a backend directly
  - lb (defaults, -q)
  - nginx: 1 worker, upstream keepalive 64, proxy_http_version 1.1     (if installed)
  - HAProxy: nbthread 1, mode http, http-reuse always, roundrobin      (if installed)
Runs alternate between them for several rounds; medians of requests/s, p99 latency and
each proxy's own CPU time per request (user + system, from /proc) are reported. Then the same in
TCP pass-through mode (lb -m tcp, HAProxy mode tcp, nginx stream if the module is there,
and examples/tcp_relay_floor: one recv and one send per event and nothing else, the floor
for any proxy built on recv and send), then the resident memory each proxy adds per idle
keep-alive connection, then POST fan-out to three backends against GET through the same lb.

The results (markdown) go to stdout, progress to stderr.

Options:
  --rounds N            alternating rounds per target (default 5)
  --duration DUR        length of each wrk run (default 5s)
  --connections N       wrk connections (default 50)
  --threads N           wrk threads (default 1)
  --idle-connections N  idle connections for the memory test (default 5000)
  --skip-tcp            no TCP pass-through comparison
  --skip-memory         no memory per idle connection
  --skip-post           no POST fan-out measurement
  --no-build            use target/release/{lb,backend,examples/tcp_relay_floor} as they are
  -h, --help            this help

Needs wrk and python3; nginx and haproxy are used when found. Debian/Ubuntu:
  sudo apt-get install wrk nginx-light haproxy
The numbers depend on the machine and whatever else runs on it: wrk, the proxy and the
backends share the CPUs, so compare the ratios rather than the absolute figures.
TXT
}

log() { echo "compare.sh: $*" >&2; }
die() {
    log "$*"
    exit 1
}
die_usage() {
    log "$*"
    echo "Try scripts/compare.sh --help" >&2
    exit 2
}

rounds=5
duration=5s
connections=50
threads=1
idle_conns=5000
skip_tcp=0
skip_memory=0
skip_post=0
build=1

need_arg() { [[ $# -ge 2 && -n $2 ]] || die_usage "$1 needs a value"; }
while [[ $# -gt 0 ]]; do
    case $1 in
        --rounds) need_arg "$@"; rounds=$2; shift 2 ;;
        --duration) need_arg "$@"; duration=$2; shift 2 ;;
        --connections) need_arg "$@"; connections=$2; shift 2 ;;
        --threads) need_arg "$@"; threads=$2; shift 2 ;;
        --idle-connections) need_arg "$@"; idle_conns=$2; shift 2 ;;
        --rounds=* | --duration=* | --connections=* | --threads=* | --idle-connections=*)
            set -- "${1%%=*}" "${1#*=}" "${@:2}" ;;
        --skip-tcp) skip_tcp=1; shift ;;
        --skip-memory) skip_memory=1; shift ;;
        --skip-post) skip_post=1; shift ;;
        --no-build) build=0; shift ;;
        -h | --help) usage; exit 0 ;;
        *) die_usage "unknown option: $1" ;;
    esac
done

positive() { [[ $1 =~ ^[0-9]+$ ]] && ((10#$1 > 0)); }

# shellcheck source=scripts/bench_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/bench_lib.sh"
positive "$rounds" || die_usage "bad --rounds: $rounds"
positive "$connections" || die_usage "bad --connections: $connections"
positive "$threads" || die_usage "bad --threads: $threads"
positive "$idle_conns" || die_usage "bad --idle-connections: $idle_conns"
[[ $duration =~ ^[0-9]+[smh]?$ ]] || die_usage "bad --duration: $duration (e.g. 5s, 1m)"
((threads <= connections)) || die_usage "--threads must not exceed --connections"

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

missing=()
wrk_bin=$(find_tool wrk) || missing+=(wrk)
python_bin=$(find_tool python3) || missing+=(python3)
if ((build)); then
    command -v cargo >/dev/null || missing+=("cargo (https://rustup.rs)")
fi
if ((${#missing[@]})); then
    die "not installed: ${missing[*]}; Debian/Ubuntu: sudo apt-get install wrk python3"
fi
nginx_bin=$(find_tool nginx) || nginx_bin=""
haproxy_bin=$(find_tool haproxy) || haproxy_bin=""
[[ -n $nginx_bin ]] || log "nginx not found: skipped (sudo apt-get install nginx-light)"
[[ -n $haproxy_bin ]] || log "haproxy not found: skipped (sudo apt-get install haproxy)"

# File descriptors: 5000 idle clients need 5000+ in each proxy. Raise the soft limit as far
# as the hard limit allows; children inherit it.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
nofile=$(ulimit -n)
[[ $nofile == unlimited ]] && nofile=1048576
if ((!skip_memory && nofile < idle_conns + 200)); then
    log "fd limit $nofile is too low for $idle_conns idle connections: memory test skipped"
    log "  (raise it with ulimit -n, or pass --idle-connections)"
    skip_memory=1
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/lb-compare.XXXXXX")
# nginx workers drop to an unprivileged user when started as root: let them reach their files.
chmod 755 "$tmp"

pids=()
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- build -----------------------------------------------------------------------------

if ((build)); then
    log "cargo build --release --bins --example tcp_relay_floor"
    cargo build --release --bins --example tcp_relay_floor >&2
fi
for b in lb backend examples/tcp_relay_floor; do
    [[ -x target/release/$b ]] || die "target/release/$b is missing (run without --no-build)"
done
# A private copy, so that a rebuild elsewhere during the run changes nothing here.
mkdir "$tmp/bin"
cp target/release/lb target/release/backend target/release/examples/tcp_relay_floor "$tmp/bin/"
lb_bin=$tmp/bin/lb
backend_bin=$tmp/bin/backend
floor_bin=$tmp/bin/tcp_relay_floor
lb_extra=(-q)
# The admin listener has a fixed default port; two lb instances must not both want it.
if "$lb_bin" --help 2>&1 | grep -q -- '--admin'; then
    lb_extra+=(--admin off)
fi

# --- helpers (the rest are in bench_lib.sh) ---------------------------------------------

# "lb/X" ratio rows: requests/s (higher is better for lb), p99 and proxy CPU per request
# (lower is better for lb).
ratio_rows() {
    local lb=$1 t
    shift
    for t in "$@"; do
        [[ -n ${URL[$t]:-} ]] || continue
        echo "| lb / ${LABEL[$t]%% (*} | $(ratio "$(median "${RPS[$lb]}")" "$(median "${RPS[$t]}")") |" \
            "$(ratio "$(median "${P99[$lb]}")" "$(median "${P99[$t]}")") |" \
            "$(ratio "$(median "${CPU[$lb]}")" "$(median "${CPU[$t]}")") |"
    done
}

# One mode's results, then lb's ratios to the others when there are others to compare.
results_table() {
    table "$@"
    echo
    if (($# > 2)); then
        echo "| ratio | requests/s | p99 latency | proxy CPU per request |"
        echo "|---|---:|---:|---:|"
        ratio_rows lb nginx haproxy floor
        echo
    fi
}

# --- nginx and HAProxy configuration -----------------------------------------------------

# nginx stream module: built in, or a dynamic module that is installed, or neither.
nginx_stream_load=""
nginx_stream=0
if [[ -n $nginx_bin ]]; then
    nginx_v=$("$nginx_bin" -V 2>&1 || true)
    if grep -qE -- '--with-stream( |$)' <<<"$nginx_v"; then
        nginx_stream=1
    elif grep -qE -- '--with-stream=dynamic' <<<"$nginx_v"; then
        modpath=$(grep -oE -- '--modules-path=[^ ]+' <<<"$nginx_v" | cut -d= -f2)
        for so in "${modpath:-/usr/lib/nginx/modules}/ngx_stream_module.so" /usr/lib/nginx/modules/ngx_stream_module.so \
            /usr/share/nginx/modules/ngx_stream_module.so; do
            if [[ -f $so ]]; then
                nginx_stream_load="load_module $so;"
                nginx_stream=1
                break
            fi
        done
    fi
fi

# nginx: one worker, connections for the memory test and then some.
nginx_conns=$((nofile > 10300 ? 10240 : nofile - 64))
# HAProxy needs about two descriptors per connection.
haproxy_maxconn=$(((nofile - 200) / 2 < 10000 ? (nofile - 200) / 2 : 10000))

# Writes an nginx config for MODE (http|tcp) listening on PORT in front of the backends.
nginx_conf() {
    local mode=$1 port=$2 dir=$3 b
    shift 3
    mkdir -p "$dir"
    {
        if [[ $mode == tcp ]]; then
            echo "$nginx_stream_load"
        fi
        cat <<EOF
worker_processes 1;
daemon off;
master_process on;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
worker_rlimit_nofile $nofile;
events {
    worker_connections $nginx_conns;
}
EOF
        if [[ $mode == http ]]; then
            cat <<EOF
http {
    access_log off;
    client_body_temp_path $dir/client_body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
    # lb and HAProxy put no cap on requests per keep-alive connection; nor does this.
    keepalive_requests 1000000;
    upstream backends {
EOF
            for b in "$@"; do echo "        server 127.0.0.1:$b;"; done
            cat <<EOF
        keepalive 64;
        keepalive_requests 1000000;
    }
    server {
        listen 127.0.0.1:$port;
        location / {
            proxy_pass http://backends;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
EOF
        else
            echo "stream {"
            echo "    upstream backends {"
            for b in "$@"; do echo "        server 127.0.0.1:$b;"; done
            cat <<EOF
    }
    server {
        listen 127.0.0.1:$port;
        proxy_pass backends;
    }
}
EOF
        fi
    } >"$dir/nginx.conf"
}

haproxy_conf() {
    local mode=$1 port=$2 file=$3 b i=0
    shift 3
    {
        cat <<EOF
global
    nbthread 1
    maxconn $haproxy_maxconn

defaults
    mode $mode
    maxconn $haproxy_maxconn
    timeout connect 3s
    timeout client 60s
    timeout server 30s
    timeout http-keep-alive 60s

frontend fe
    bind 127.0.0.1:$port
    default_backend be

backend be
    balance roundrobin
EOF
        if [[ $mode == http ]]; then
            echo "    http-reuse always"
        fi
        for b in "$@"; do
            i=$((i + 1))
            echo "    server s$i 127.0.0.1:$b"
        done
    } >"$file"
}

# Starts a proxy of KIND (lb|nginx|haproxy) in MODE on PORT for backends; sets started_pid
# and started_log. lb also gets the arguments in lb_more.
started_pid=""
started_log=""
lb_more=()
start_proxy() {
    local kind=$1 mode=$2 port=$3 name logf b
    shift 3
    name="$kind-$mode-$port"
    logf="$tmp/$name.log"
    case $kind in
        lb)
            local args=(-l "127.0.0.1:$port" -m "$mode" "${lb_extra[@]}" "${lb_more[@]}")
            for b in "$@"; do args+=(-b "127.0.0.1:$b"); done
            "$lb_bin" "${args[@]}" 2>"$logf" &
            ;;
        nginx)
            nginx_conf "$mode" "$port" "$tmp/$name" "$@"
            "$nginx_bin" -p "$tmp/$name" -e "$tmp/$name/error.log" -c "$tmp/$name/nginx.conf" 2>"$logf" &
            logf="$tmp/$name/error.log"
            ;;
        haproxy)
            haproxy_conf "$mode" "$port" "$tmp/$name.cfg" "$@"
            "$haproxy_bin" -db -f "$tmp/$name.cfg" >"$logf" 2>&1 &
            ;;
        floor)
            local args=("127.0.0.1:$port")
            for b in "$@"; do args+=("127.0.0.1:$b"); done
            "$floor_bin" "${args[@]}" 2>"$logf" &
            ;;
    esac
    started_pid=$!
    started_log=$logf
    pids+=("$started_pid")
    wait_ready "$kind ($mode)" "$started_pid" "$port" "$logf"
    # Whose CPU time counts for this kind of target in the benchmarks.
    PIDS[$kind]=$(proxy_pids "$kind" "$started_pid")
}

# --- machine ---------------------------------------------------------------------------

cpu_model=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)
[[ -n $cpu_model ]] || cpu_model=$(uname -m)
first_line() { { "$@" 2>&1 || true; } | awk 'NR == 1'; }
lb_version=$(first_line "$lb_bin" --version)
wrk_version=$(first_line "$wrk_bin" -v | awk '{ print $1, $2 }')
py_version=$(first_line "$python_bin" --version)
nginx_version=""
haproxy_version=""
[[ -z $nginx_bin ]] || nginx_version=$(first_line "$nginx_bin" -v | sed 's/^nginx version: //')
[[ -z $haproxy_bin ]] || haproxy_version=$(first_line "$haproxy_bin" -v | awk '{ print "HAProxy " $3 }')
loadavg=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo "?")

report=$tmp/report.md
{
    echo "## lb, nginx and HAProxy on one machine"
    echo
    echo "- $(nproc) CPUs: $cpu_model; Linux $(uname -r); load average at start $loadavg"
    echo "- $lb_version, $wrk_version, ${nginx_version:-no nginx}, ${haproxy_version:-no HAProxy}, $py_version"
    echo "- fd limit $nofile; wrk -t$threads -c$connections -d$duration --latency, keep-alive;" \
        "rounds: $rounds, run alternately; medians shown"
    echo "- wrk, the proxy and the demo backends share the CPUs, so the ratios say more than the absolute numbers"
    echo
} >"$report"

# --- backends --------------------------------------------------------------------------

read -r -a ports <<<"$(free_ports 18)"
((${#ports[@]} == 18)) || die "could not find 18 free ports on 127.0.0.1"
b1=${ports[0]} b2=${ports[1]} b3=${ports[2]}
p_lb=${ports[3]} p_nginx=${ports[4]} p_haproxy=${ports[5]}
p_lb_tcp=${ports[6]} p_nginx_tcp=${ports[7]} p_haproxy_tcp=${ports[8]}
p_lb_post=${ports[9]}
mem_ports=("${ports[@]:10:6}")
p_admin=${ports[16]}
p_floor_tcp=${ports[17]}

for i in 1 2; do
    port=${ports[$((i - 1))]}
    "$backend_bin" --listen "127.0.0.1:$port" --name "server$i" 2>"$tmp/backend$i.log" &
    pids+=($!)
    wait_ready "backend server$i" "$!" "$port" "$tmp/backend$i.log"
done
log "backends on 127.0.0.1:$b1 and 127.0.0.1:$b2"

# The targets of the section being benchmarked, and the proxies it started.
targets=()
running=()
# Starts a proxy of KIND in MODE on PORT in front of the two backends and adds it to the
# targets under LABEL.
add_proxy() {
    local kind=$1 mode=$2 port=$3 label=$4
    start_proxy "$kind" "$mode" "$port" "$b1" "$b2"
    running+=("$started_pid")
    LOGF[$kind]=$started_log
    LABEL[$kind]=$label URL[$kind]="http://127.0.0.1:$port/"
    targets+=("$kind")
}
# Stops the proxies the section started.
stop_running() {
    local pid
    for pid in "${running[@]}"; do
        stop "$pid"
    done
    running=()
}

# --- HTTP ------------------------------------------------------------------------------

log "HTTP keep-alive: GET /"
LABEL[direct]="backend, direct" URL[direct]="http://127.0.0.1:$b1/"
targets=(direct)
add_proxy lb http "$p_lb" "lb"
[[ -z $nginx_bin ]] || add_proxy nginx http "$p_nginx" "nginx (1 worker, keepalive 64)"
[[ -z $haproxy_bin ]] || add_proxy haproxy http "$p_haproxy" "HAProxy (nbthread 1, http-reuse always)"
bench_alternating "${targets[@]}"
stop_running
{
    echo "### HTTP/1.1 keep-alive, \`GET /\` (small answers), two backends, round-robin"
    echo
    results_table "${targets[@]}"
} >>"$report"

# --- TCP -------------------------------------------------------------------------------

if ((!skip_tcp)); then
    log "TCP pass-through: HTTP keep-alive GET / through an L4 proxy"
    unset 'URL[lb]' 'URL[nginx]' 'URL[haproxy]'
    targets=(direct)
    add_proxy lb tcp "$p_lb_tcp" "lb -m tcp"
    tcp_notes=("the minimal relay does one recv and one send per event and nothing else; lb / minimal relay
  near 1 means lb's own work costs little, and no proxy built on recv and send can lead HAProxy
  by much more than the minimal relay does")
    if [[ -n $nginx_bin ]]; then
        if ((nginx_stream)) && nginx_conf tcp "$p_nginx_tcp" "$tmp/nginx-check" "$b1" "$b2" &&
            "$nginx_bin" -t -q -p "$tmp/nginx-check" -e "$tmp/nginx-check/error.log" \
                -c "$tmp/nginx-check/nginx.conf" 2>/dev/null; then
            add_proxy nginx tcp "$p_nginx_tcp" "nginx stream (1 worker)"
        else
            log "  nginx has no stream module here (nginx-light lacks it; libnginx-mod-stream adds it): skipped"
            tcp_notes+=("nginx skipped: its stream module is not installed (libnginx-mod-stream)")
        fi
    fi
    [[ -z $haproxy_bin ]] || add_proxy haproxy tcp "$p_haproxy_tcp" "HAProxy mode tcp (nbthread 1)"
    add_proxy floor tcp "$p_floor_tcp" "minimal relay (floor: recv + send only)"
    bench_alternating "${targets[@]}"
    stop_running
    {
        echo "### TCP pass-through (L4), same HTTP load carried unparsed"
        echo
        results_table "${targets[@]}"
        for note in "${tcp_notes[@]}"; do
            echo "- $note"
        done
        ((${#tcp_notes[@]} == 0)) || echo
    } >>"$report"
fi

# --- memory ----------------------------------------------------------------------------

# Opens the idle connections to a running proxy of KIND (pid PID) on PORT, at most IN_FLIGHT
# being opened at a time; sets mem_open, mem_before and mem_after (KiB).
measure_idle() {
    local kind=$1 pid=$2 port=$3 in_flight=$4 out err cpid i line
    mem_open=0 mem_before=0 mem_after=0
    # A few requests first, so that lazily allocated buffers are in the baseline.
    for i in 1 2 3 4; do http_ok "$port" || true; done
    sleep 0.5
    # shellcheck disable=SC2046  # a list of pids
    mem_before=$(rss_kib $(proxy_pids "$kind" "$pid"))
    out="$tmp/idle-$port.out"
    err="$tmp/idle-$port.err"
    "$python_bin" "$root/scripts/idle_clients.py" --port "$port" -n "$idle_conns" \
        --in-flight "$in_flight" --wait signal \
        >"$out" 2>"$err" &
    cpid=$!
    pids+=("$cpid")
    line=""
    for ((i = 0; i < 1200; i++)); do
        line=$(grep -m1 '^READY' "$out" 2>/dev/null || true)
        [[ -z $line ]] || break
        kill -0 "$cpid" 2>/dev/null || break
        sleep 0.1
    done
    if [[ -n $line ]]; then
        mem_open=$(sed -E 's/.*open=([0-9]+).*/\1/' <<<"$line")
        sleep 1
        # shellcheck disable=SC2046
        mem_after=$(rss_kib $(proxy_pids "$kind" "$pid"))
    else
        log "  idle_clients did not get ready"
        mem_after=$mem_before
    fi
    stop "$cpid"
    [[ ! -s $err ]] || sed 's/^/    idle_clients: /' "$err" >&2
}

# Starts a fresh proxy of KIND on PORT, measures it with the idle connections opened at most
# IN_FLIGHT at a time, stops it. Sets mem_per (KiB per connection, or -).
mem_measure() {
    local kind=$1 port=$2 in_flight=$3 label=$4 pid
    start_proxy "$kind" http "$port" "$b1" "$b2"
    pid=$started_pid
    measure_idle "$kind" "$pid" "$port" "$in_flight"
    stop "$pid"
    mem_per="-"
    if ((mem_open > 0)); then
        mem_per=$(awk -v a="$mem_after" -v b="$mem_before" -v n="$mem_open" 'BEGIN { printf "%.2f", (a - b) / n }')
    fi
    log "  $label, $in_flight opening at a time: $mem_open open, RSS $mem_before -> $mem_after KiB," \
        "$mem_per KiB per connection"
}

# Two measurements per proxy: connections opened a few at a time show what an idle
# connection itself costs; opened in a burst, they also show how much of the memory used
# while the burst was being answered the proxy keeps.
mem_rows=()
mem_target() {
    local kind=$1 port_a=$2 port_b=$3 label=$4 row
    mem_measure "$kind" "$port_a" "$trickle" "$label"
    row="| $label | $mem_open | $mem_before | $mem_after | $mem_per |"
    mem_measure "$kind" "$port_b" "$burst" "$label"
    mem_rows+=("$row $mem_open | $mem_after | $mem_per |")
}

trickle=10
burst=1000
if ((!skip_memory)); then
    log "memory: $idle_conns idle keep-alive connections per proxy"
    mem_target lb "${mem_ports[0]}" "${mem_ports[1]}" "lb"
    [[ -z $nginx_bin ]] || mem_target nginx "${mem_ports[2]}" "${mem_ports[3]}" "nginx (master + worker)"
    [[ -z $haproxy_bin ]] || mem_target haproxy "${mem_ports[4]}" "${mem_ports[5]}" "HAProxy"
    {
        echo "### Memory per idle keep-alive connection"
        echo
        echo "Each client connection sends one \`GET /\`, reads the answer and stays open. Resident memory"
        echo "(VmRSS) of a fresh proxy before, and with all of them open; once with the connections"
        echo "opened $trickle at a time (the cost of an idle connection), once $burst at a time (plus what"
        echo "the proxy keeps of the memory it used to answer them all at once)."
        echo
        echo "| proxy | open ($trickle at a time) | RSS before (KiB) | RSS with them (KiB) | KiB per connection |" \
            "open ($burst at a time) | RSS with them (KiB) | KiB per connection |"
        echo "|---|---:|---:|---:|---:|---:|---:|---:|"
        printf '%s\n' "${mem_rows[@]}"
        echo
    } >>"$report"
fi

# --- POST fan-out ----------------------------------------------------------------------

if ((!skip_post)); then
    log "POST fan-out: lb in front of three backends"
    "$backend_bin" --listen "127.0.0.1:$b3" --name server3 2>"$tmp/backend3.log" &
    pids+=($!)
    wait_ready "backend server3" "$!" "$b3" "$tmp/backend3.log"
    # Metrics on a port of its own, read when a round has errors.
    post_admin=0
    if [[ ${lb_extra[*]} == *--admin* ]]; then
        lb_more=(--admin "127.0.0.1:$p_admin")
        post_admin=1
    fi
    start_proxy lb http "$p_lb_post" "$b1" "$b2" "$b3"
    lb_post_pid=$started_pid
    lb_post_log=$started_log
    lb_more=()
    # Shows why requests failed: lb's answers of its own, fan-out state, its log.
    post_diagnose() {
        if ((post_admin)); then
            http_get "$p_admin" /metrics | grep -E '^lb_(local_responses_total|fanout_pending_retries|backend_up|fanout_copies_total)' |
                grep -v ' 0$' | sed 's/^/      /' >&2 || true
        fi
        tail -n 3 "$lb_post_log" | sed 's/^/      /' >&2
    }
    cat >"$tmp/post.lua" <<'LUA'
-- POST /register with a new user name each request, empty body.
local threads = 0
function setup(thread)
    threads = threads + 1
    thread:set("tid", threads)
end
local n = 0
local tag = "r"
function init(args)
    tag = args[1] or "r"
end
function request()
    n = n + 1
    local path = "/register?username=u" .. tag .. "t" .. tostring(tid) .. "n" .. n .. "&password=p"
    return wrk.format("POST", path, { ["Content-Length"] = "0" })
end
LUA
    post_rps="" post_p99="" post_errs=0 get_rps="" get_p99="" get_errs=0
    url="http://127.0.0.1:$p_lb_post/"
    wrk_run "$url" 1s >/dev/null
    wrk_run "$url" 1s "$tmp/post.lua" warm >/dev/null
    for ((r = 1; r <= rounds; r++)); do
        read -r rps p99 errs _ <<<"$(wrk_run "$url" "$duration")"
        get_rps+=" $rps" get_p99+=" $p99" get_errs=$((get_errs + errs))
        log "  round $r/$rounds  GET  $(fmt_int "$rps") req/s  p99 $(fmt_ms "$p99")  errors $errs"
        ((errs == 0)) || post_diagnose
        read -r rps p99 errs _ <<<"$(wrk_run "$url" "$duration" "$tmp/post.lua" "$r")"
        post_rps+=" $rps" post_p99+=" $p99" post_errs=$((post_errs + errs))
        log "  round $r/$rounds  POST $(fmt_int "$rps") req/s  p99 $(fmt_ms "$p99")  errors $errs"
        ((errs == 0)) || post_diagnose
    done
    stop "$lb_post_pid"
    get_med=$(median "$get_rps")
    post_med=$(median "$post_rps")
    pct=$(awk -v p="$post_med" -v g="$get_med" 'BEGIN { if (g > 0) printf "%.0f%%", 100 * p / g; else print "-" }')
    verdict=$(awk -v p="$post_med" -v g="$get_med" 'BEGIN { print (g > 0 && p / g >= 0.30) ? "meets" : "misses" }')
    {
        echo "### POST fan-out to three backends, against GET through the same lb"
        echo
        echo "Each POST \`/register?username=uN&password=p\` (empty body) goes to all three backends;"
        echo "the client gets the first 201. GET \`/\` goes to one backend."
        echo
        echo "| request | requests/s | p99 latency | errors |"
        echo "|---|---:|---:|---:|"
        echo "| GET / | $(fmt_int "$get_med") | $(fmt_ms "$(median "$get_p99")") | $get_errs |"
        echo "| POST /register (fan-out x3) | $(fmt_int "$post_med") | $(fmt_ms "$(median "$post_p99")") | $post_errs |"
        echo
        echo "POST/GET: **$pct** of the GET rate ($verdict the 30% target)."
        echo
    } >>"$report"
fi

log "done"
cat "$report"
