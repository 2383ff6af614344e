#!/usr/bin/env bash
# lb next to nginx and HAProxy on this machine, in one run, in front of demo backends and of
# nginx backends: several HTTP load shapes, POST fan-out, TCP pass-through, and memory per
# idle connection. Everything listens on 127.0.0.1 and is stopped on exit.
# scripts/compare.sh --help
set -euo pipefail

usage() {
    cat <<'TXT'
Usage: scripts/compare.sh [options] > results.md

Builds lb (cargo build --release), then for each kind of backend (--backend) starts three
backends on free loopback ports and puts the same wrk load through each of:
  - a backend directly
  - lb (defaults, -q)
  - nginx: 1 worker, upstream keepalive 64, proxy_http_version 1.1     (if installed)
  - HAProxy: nbthread 1, mode http, http-reuse always, roundrobin      (if installed)
alternating between them for several rounds, for each load shape (--shapes):
  small   GET / (a short answer), keep-alive, --connections connections
  c10     the same with 10 connections (the tail when few requests are in flight)
  c200    the same with 200 connections
  16k     GET /bytes/16384, a 16 KiB answer
  256k    GET /bytes/262144, a 256 KiB answer
  mixed   GET /, one request in ten with Connection: close (a new connection each time)
  post    POST /register to three backends: lb's fan-out (all three, the client gets the
          first success), lb --fanout 1, nginx with its mirror module (one answers, the two
          others get copies), and HAProxy (one backend; it has no fan-out)
Then TCP pass-through (lb -m tcp, HAProxy mode tcp, nginx stream if the module is there,
and examples/tcp_relay_floor: one recv and one send per event and nothing else, the floor
for any proxy built on recv and send), and once, the resident memory each proxy adds per
idle keep-alive connection. Medians of requests/s, p99 latency and each proxy's own CPU
time per request (user + system, from /proc) are reported.

The results (markdown) go to stdout, progress to stderr.

Options:
  --backend KIND        demo, nginx or both (default both; nginx needs nginx installed)
  --shapes LIST         comma-separated load shapes (default small,c10,c200,16k,256k,mixed,post)
  --rounds N            alternating rounds per target (default 5)
  --duration DUR        length of each wrk run (default 5s)
  --connections N       wrk connections for all shapes but c10 and c200 (default 50)
  --threads N           wrk threads (default 1)
  --idle-connections N  idle connections for the memory test (default 5000)
  --burst N             connections opened at once in the memory test's burst (default 1000)
  --slow-clients N      slowloris connections (half a request head each) in the memory
                        test (default 4000; 0 for none)
  --lb PATH             measure this lb binary instead of target/release/lb (a baseline)
  --also NAME=PATH      also measure the lb binary PATH (or a script that execs one), as
                        "lb NAME", in the HTTP load shapes, alternating with the others:
                        an A/B of two builds in one run (repeatable)
  --ports LO-HI         take the loopback ports it listens on from this range
                        (default 20000-31999)
  --skip-http           no HTTP load shapes (--backend none does the same)
  --skip-tcp            no TCP pass-through comparison
  --skip-memory         no memory per idle connection
  --no-build            use target/release/{lb,backend,examples/tcp_relay_floor} as they are
  -h, --help            this help

Needs wrk and python3; nginx and haproxy are used when found. Debian/Ubuntu:
  sudo apt-get install wrk nginx-light haproxy
The numbers depend on the machine and whatever else runs on it: wrk, the proxy and the
backends share the CPUs, so compare the ratios rather than the absolute figures.
TXT
}

script=compare.sh
# shellcheck source=scripts/bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/bench/lib.sh"

backend_kinds=(demo nginx)
shapes=small,c10,c200,16k,256k,mixed,post
base_connections=50
idle_conns=5000
burst=1000
slow_clients=4000
lb_override=""
also_names=()
also_paths=()
port_range=20000-31999
skip_tcp=0
skip_memory=0
build=1

while [[ $# -gt 0 ]]; do
    case $1 in
        --backend)
            need_arg "$@"
            case $2 in
                demo | nginx) backend_kinds=("$2") ;;
                both) backend_kinds=(demo nginx) ;;
                none) backend_kinds=() ;;
                *) die_usage "bad --backend: $2 (demo, nginx, both or none)" ;;
            esac
            shift 2
            ;;
        --shapes) need_arg "$@"; shapes=$2; shift 2 ;;
        --rounds) need_arg "$@"; rounds=$2; shift 2 ;;
        --duration) need_arg "$@"; duration=$2; shift 2 ;;
        --connections) need_arg "$@"; base_connections=$2; shift 2 ;;
        --threads) need_arg "$@"; threads=$2; shift 2 ;;
        --idle-connections) need_arg "$@"; idle_conns=$2; shift 2 ;;
        --burst) need_arg "$@"; burst=$2; shift 2 ;;
        --slow-clients) need_arg "$@"; slow_clients=$2; shift 2 ;;
        --lb) need_arg "$@"; lb_override=$2; shift 2 ;;
        --also)
            need_arg "$@"
            [[ $2 =~ ^([a-z0-9_-]+)=(.+)$ ]] || die_usage "bad --also: $2 (NAME=PATH)"
            also_names+=("${BASH_REMATCH[1]}")
            also_paths+=("${BASH_REMATCH[2]}")
            shift 2
            ;;
        --ports) need_arg "$@"; port_range=$2; shift 2 ;;
        --backend=* | --shapes=* | --rounds=* | --duration=* | --connections=* | --threads=* \
            | --idle-connections=* | --burst=* | --slow-clients=* | --lb=* | --also=* | --ports=*)
            set -- "${1%%=*}" "${1#*=}" "${@:2}" ;;
        --skip-http) backend_kinds=(); shift ;;
        --skip-tcp) skip_tcp=1; shift ;;
        --skip-memory) skip_memory=1; shift ;;
        --no-build) build=0; shift ;;
        -h | --help) usage; exit 0 ;;
        *) die_usage "unknown option: $1" ;;
    esac
done

positive "$rounds" || die_usage "bad --rounds: $rounds"
positive "$base_connections" || die_usage "bad --connections: $base_connections"
positive "$threads" || die_usage "bad --threads: $threads"
positive "$idle_conns" || die_usage "bad --idle-connections: $idle_conns"
positive "$burst" || die_usage "bad --burst: $burst"
[[ $slow_clients =~ ^[0-9]+$ ]] || die_usage "bad --slow-clients: $slow_clients"
[[ -z $lb_override || -x $lb_override ]] || die_usage "--lb $lb_override is not an executable"
for p in "${also_paths[@]}"; do
    [[ -x $p ]] || die_usage "--also $p is not an executable"
done
check_port_range "$port_range" 20000-20999
[[ $duration =~ ^[0-9]+[smh]?$ ]] || die_usage "bad --duration: $duration (e.g. 5s, 1m)"
((threads <= base_connections)) || die_usage "--threads must not exceed --connections"
IFS=, read -r -a shape_list <<<"$shapes"
for s in "${shape_list[@]}"; do
    [[ $s =~ ^(small|c10|c200|16k|256k|mixed|post)$ ]] || die_usage "unknown shape: $s"
done
has_shape() { [[ ,$shapes, == *,$1,* ]]; }

cd "$bench_root"
missing=()
wrk_bin=$(find_tool wrk) || missing+=(wrk)
find_tool python3 >/dev/null || missing+=(python3)
if ((build)); then
    command -v cargo >/dev/null || missing+=("cargo (https://rustup.rs)")
fi
if ((${#missing[@]})); then
    die "not installed: ${missing[*]}; Debian/Ubuntu: sudo apt-get install wrk python3"
fi
nginx_bin=$(find_tool nginx) || nginx_bin=""
haproxy_bin=$(find_tool haproxy) || haproxy_bin=""
[[ -n $nginx_bin ]] || log "nginx not found: skipped, and so are nginx backends (sudo apt-get install nginx-light)"
[[ -n $haproxy_bin ]] || log "haproxy not found: skipped (sudo apt-get install haproxy)"
if [[ -z $nginx_bin ]]; then
    backend_kinds=("${backend_kinds[@]/nginx/}")
fi
if ((!skip_memory && nofile < idle_conns + 200)); then
    log "fd limit $nofile is too low for $idle_conns idle connections: memory test skipped"
    log "  (raise it with ulimit -n, or pass --idle-connections)"
    skip_memory=1
fi

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
[[ -z $lb_override ]] || cp "$lb_override" "$tmp/bin/lb"
lb_bin=$tmp/bin/lb
backend_bin=$tmp/bin/backend
floor_bin=$tmp/bin/tcp_relay_floor
# shellcheck source=scripts/bench/proxies.sh
source "$bench_root/scripts/bench/proxies.sh"
for i in "${!also_names[@]}"; do
    cp "${also_paths[$i]}" "$tmp/bin/lb-${also_names[$i]}"
    LB_BIN[lb-${also_names[$i]}]=$tmp/bin/lb-${also_names[$i]}
done

# --- machine ---------------------------------------------------------------------------

cpu_model=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)
[[ -n $cpu_model ]] || cpu_model=$(uname -m)
first_line() { { "$@" 2>&1 || true; } | awk 'NR == 1'; }
lb_version=$(first_line "$lb_bin" --version)
wrk_version=$(first_line "$wrk_bin" -v | awk '{ print $1, $2 }')
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
    echo "- $lb_version, $wrk_version, ${nginx_version:-no nginx}, ${haproxy_version:-no HAProxy}"
    echo "- fd limit $nofile; wrk -t$threads -d$duration --latency; rounds: $rounds, run alternately;" \
        "medians shown"
    echo "- wrk, the proxy and the backends share the CPUs, so the ratios say more than the absolute numbers"
    echo
} >"$report"

# --- ports and Lua scripts ---------------------------------------------------------------

ports_wanted=$((40 + 2 * ${#also_names[@]}))
read -r -a port_pool <<<"$(free_ports "$ports_wanted" "$port_range")"
((${#port_pool[@]} == ports_wanted)) || die "could not find $ports_wanted free ports on 127.0.0.1"
next_port=0
# Sets `port` to a free port not handed out before.
take_port() {
    port=${port_pool[$next_port]}
    next_port=$((next_port + 1))
}

cat >"$tmp/mixed.lua" <<'LUA'
-- GET /, and one request in ten asks to close the connection, so wrk opens a new one.
local n = 0
function request()
    n = n + 1
    if n % 10 == 0 then
        return wrk.format("GET", "/", { ["Connection"] = "close" })
    end
    return wrk.format("GET", "/")
end
LUA
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

# The targets of the section being benchmarked, and the proxies it started.
targets=()
running=()
# Starts a proxy of KIND in MODE in front of the given backend ports and adds it to the
# targets under LABEL.
add_proxy() {
    local kind=$1 mode=$2 label=$3
    shift 3
    take_port
    start_proxy "$kind" "$mode" "$port" "$@"
    running+=("$started_pid")
    LOGF[$kind]=$started_log
    LABEL[$kind]=$label
    BASE[$kind]="http://127.0.0.1:$port"
    URL[$kind]=${BASE[$kind]}/
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

# Sets URL paths, the Lua script and wrk's connections for SHAPE on every target; prints
# the section's title.
shape_setup() {
    local shape=$1 t path=/ lua=""
    connections=$base_connections
    case $shape in
        small) title="GET / (a short answer), keep-alive, $connections connections" ;;
        c10)
            connections=10
            title="GET /, keep-alive, 10 connections"
            ;;
        c200)
            connections=200
            title="GET /, keep-alive, 200 connections"
            ;;
        16k)
            path=/bytes/16384
            title="GET /bytes/16384 (16 KiB answers), keep-alive, $connections connections"
            ;;
        256k)
            path=/bytes/262144
            title="GET /bytes/262144 (256 KiB answers), keep-alive, $connections connections"
            ;;
        mixed)
            lua=$tmp/mixed.lua
            title="GET /, one request in ten with Connection: close, $connections connections"
            ;;
    esac
    for t in "${targets[@]}"; do
        URL[$t]=${BASE[$t]}$path
        SCRIPT[$t]=$lua
    done
}

# --- one kind of backend ----------------------------------------------------------------

backend_section() {
    local kind=$1 b1 b2 b3 shape
    take_port; b1=$port
    take_port; b2=$port
    take_port; b3=$port
    start_backend "$kind" "${kind}1" "$b1"
    start_backend "$kind" "${kind}2" "$b2"
    start_backend "$kind" "${kind}3" "$b3"
    log "$kind backends on 127.0.0.1:$b1, :$b2 and :$b3"
    {
        echo "## In front of $kind backends"
        echo
        if [[ $kind == nginx ]]; then
            echo "Each backend is nginx with one worker, answering from memory (\`return\`) or"
            echo "from a file (\`/bytes/N\`)."
        else
            echo "Each backend is lb's demo backend (\`target/release/backend\`), one thread."
        fi
        echo
    } >>"$report"

    # HTTP shapes: the same proxies in front of two backends, section after section.
    targets=(direct)
    LABEL[direct]="backend, direct" BASE[direct]="http://127.0.0.1:$b1"
    add_proxy lb http "lb" "$b1" "$b2"
    [[ -z $nginx_bin ]] || add_proxy nginx http "nginx (1 worker, keepalive 64)" "$b1" "$b2"
    [[ -z $haproxy_bin ]] || add_proxy haproxy http "HAProxy (nbthread 1, http-reuse always)" "$b1" "$b2"
    for name in "${also_names[@]}"; do
        add_proxy "lb-$name" http "lb $name" "$b1" "$b2"
    done
    for shape in small c10 c200 16k 256k mixed; do
        has_shape "$shape" || continue
        shape_setup "$shape"
        log "[$kind backends] $title"
        bench_alternating "${targets[@]}"
        {
            echo "### $title"
            echo
            results_table "${targets[@]}"
        } >>"$report"
        # The POST section compares with the small GET rate through the same lb.
        [[ $shape != small ]] || small_get_rps=$(median "${RPS[lb]}")
    done
    stop_running

    if has_shape post; then
        log "[$kind backends] POST fan-out to three backends"
        targets=()
        connections=$base_connections
        add_proxy lb http "lb, fan-out to all three" "$b1" "$b2" "$b3"
        lb_more=(--fanout 1)
        add_proxy lb1 http "lb --fanout 1" "$b1" "$b2" "$b3"
        lb_more=()
        [[ -z $nginx_bin ]] || add_proxy nginx_mirror mirror "nginx, mirror to the other two" "$b1" "$b2" "$b3"
        [[ -z $haproxy_bin ]] || add_proxy haproxy http "HAProxy, one backend (no fan-out)" "$b1" "$b2" "$b3"
        for t in "${targets[@]}"; do
            SCRIPT[$t]=$tmp/post.lua
        done
        bench_alternating "${targets[@]}"
        stop_running
        {
            echo "### POST /register, three backends, $connections connections"
            echo
            echo "Each POST carries a new user name and an empty body. lb sends it to every backend and"
            echo "answers with the first success; nginx's mirror module does the same work but always"
            echo "answers with the first backend's response; HAProxy sends each POST to one backend."
            echo
            table "${targets[@]}"
            echo
            echo "| ratio | requests/s | p99 latency | proxy CPU per request |"
            echo "|---|---:|---:|---:|"
            ratio_rows lb nginx_mirror
            ratio_rows lb1 nginx_mirror haproxy
            echo
            if [[ -n ${small_get_rps:-} ]]; then
                echo "lb's POST fan-out rate is $(ratio "$(median "${RPS[lb]}")" "$small_get_rps") of its GET / rate above."
                echo
            fi
        } >>"$report"
    fi

    if ((!skip_tcp)); then
        log "[$kind backends] TCP pass-through: HTTP keep-alive GET / through an L4 proxy"
        targets=(direct)
        connections=$base_connections
        local notes=()
        add_proxy lb tcp "lb -m tcp" "$b1" "$b2"
        if [[ -n $nginx_bin ]]; then
            if ((nginx_stream)); then
                add_proxy nginx tcp "nginx stream (1 worker)" "$b1" "$b2"
            else
                notes+=("nginx skipped: its stream module is not installed (nginx-light lacks it; libnginx-mod-stream adds it)")
            fi
        fi
        [[ -z $haproxy_bin ]] || add_proxy haproxy tcp "HAProxy mode tcp (nbthread 1)" "$b1" "$b2"
        add_proxy floor tcp "minimal relay (floor: recv + send only)" "$b1" "$b2"
        for t in "${targets[@]}"; do
            URL[$t]=${BASE[$t]}/
            SCRIPT[$t]=""
        done
        bench_alternating "${targets[@]}"
        stop_running
        {
            echo "### TCP pass-through (L4), GET / carried unparsed, $connections connections"
            echo
            results_table "${targets[@]}"
            echo "- the minimal relay does one recv and one send per event and nothing else: lb / minimal"
            echo "  relay near 1 means lb's own work costs little"
            for note in "${notes[@]}"; do
                echo "- $note"
            done
            echo
        } >>"$report"
    fi
    # Only the backends are left.
    terminate "${pids[@]}"
    pids=()
}

for kind in "${backend_kinds[@]}"; do
    [[ -n $kind ]] || continue
    backend_section "$kind"
done

# --- memory ----------------------------------------------------------------------------

# Opens COUNT idle connections to a running proxy of KIND (pid PID) on PORT, at most
# IN_FLIGHT being opened at a time (slowloris ones when MORE is --partial-head); sets
# mem_open, mem_before and mem_after (KiB).
measure_idle() {
    local kind=$1 pid=$2 port=$3 in_flight=$4 count=$5 more=${6:-} out err cpid i line
    mem_open=0 mem_before=0 mem_after=0
    # A few requests first, so that lazily allocated buffers are in the baseline.
    for i in 1 2 3 4; do http_ok "$port" || true; done
    sleep 0.5
    # shellcheck disable=SC2046  # a list of pids
    mem_before=$(rss_kib $(proxy_pids "$kind" "$pid"))
    out="$tmp/idle-$port.out"
    err="$tmp/idle-$port.err"
    # shellcheck disable=SC2086  # MORE is one optional flag
    python3 "$bench_root/scripts/idle_clients.py" --port "$port" -n "$count" \
        --in-flight "$in_flight" --wait signal $more \
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
        # Idle for a few seconds: lb lets go of what a burst used after two housekeeping
        # periods of a second each.
        sleep 3
        # shellcheck disable=SC2046
        mem_after=$(rss_kib $(proxy_pids "$kind" "$pid"))
    else
        log "  idle_clients did not get ready"
        mem_after=$mem_before
    fi
    stop "$cpid"
    [[ ! -s $err ]] || sed 's/^/    idle_clients: /' "$err" >&2
}

# Starts a fresh proxy of KIND in front of the backends, measures it with the idle
# connections opened at most IN_FLIGHT at a time, stops it. Sets mem_per (KiB per
# connection, or -).
mem_measure() {
    local kind=$1 in_flight=$2 label=$3 count=$4 more=${5:-} pid
    take_port
    start_proxy "$kind" http "$port" "$mb1" "$mb2"
    pid=$started_pid
    measure_idle "$kind" "$pid" "$port" "$in_flight" "$count" "$more"
    stop "$pid"
    mem_per="-"
    if ((mem_open > 0)); then
        mem_per=$(awk -v a="$mem_after" -v b="$mem_before" -v n="$mem_open" 'BEGIN { printf "%.2f", (a - b) / n }')
    fi
    log "  $label, $in_flight opening at a time${more:+ ($more)}: $mem_open open," \
        "RSS $mem_before -> $mem_after KiB, $mem_per KiB per connection"
}

# Two measurements per proxy: connections opened a few at a time show what an idle
# connection itself costs; opened in a burst, they also show how much of the memory used
# while the burst was being answered the proxy keeps.
mem_rows=()
mem_target() {
    local kind=$1 label=$2 row
    mem_measure "$kind" "$trickle" "$label" "$idle_conns"
    row="| $label | $mem_open | $mem_before | $mem_after | $mem_per |"
    mem_measure "$kind" "$burst" "$label" "$idle_conns"
    row="$row $mem_open | $mem_after | $mem_per |"
    if ((slow_clients > 0)); then
        mem_measure "$kind" 200 "$label" "$slow_clients" --partial-head
        row="$row $mem_open | $mem_after | $mem_per |"
    fi
    mem_rows+=("$row")
}

trickle=10
if ((!skip_memory)); then
    log "memory: $idle_conns idle keep-alive connections per proxy"
    take_port; mb1=$port
    take_port; mb2=$port
    start_backend demo mem1 "$mb1"
    start_backend demo mem2 "$mb2"
    mem_target lb "lb"
    [[ -z $nginx_bin ]] || mem_target nginx "nginx (master + worker)"
    [[ -z $haproxy_bin ]] || mem_target haproxy "HAProxy"
    {
        echo "## Memory per idle keep-alive connection"
        echo
        echo "Each client connection sends one \`GET /\`, reads the answer and stays open. Resident memory"
        echo "(VmRSS) of a fresh proxy before, and with all of them open; once with the connections"
        echo "opened $trickle at a time (the cost of an idle connection), once $burst at a time (plus what"
        echo "the proxy keeps of the memory it used to answer them all at once)."
        slow_head="" slow_rule=""
        if ((slow_clients > 0)); then
            echo "Then $slow_clients slowloris connections that each send half a request head and wait."
            slow_head=" slowloris open | RSS with them (KiB) | KiB per connection |"
            slow_rule="---:|---:|---:|"
        fi
        echo
        echo "| proxy | open ($trickle at a time) | RSS before (KiB) | RSS with them (KiB) | KiB per connection |" \
            "open ($burst at a time) | RSS with them (KiB) | KiB per connection |$slow_head"
        echo "|---|---:|---:|---:|---:|---:|---:|---:|$slow_rule"
        printf '%s\n' "${mem_rows[@]}"
        echo
    } >>"$report"
fi

log "done"
cat "$report"
