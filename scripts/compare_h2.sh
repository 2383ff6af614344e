#!/usr/bin/env bash
# lb, nginx and HAProxy serving HTTP/2 over TLS (ALPN h2) with one ECDSA P-256 certificate
# in front of the same HTTP/1.1 backends, in one alternating run under h2load: requests/s,
# the proxy's CPU time, requests per CPU second, p50 and p99 latency; then resident memory
# per idle h2 connection and a rapid-reset flood beside a well-behaved client (issue 23).
# Everything listens on 127.0.0.1 and is stopped on exit.  scripts/compare_h2.sh --help
set -euo pipefail

usage() {
    cat <<'TXT'
Usage: scripts/compare_h2.sh [options] > results.md

Builds lb (cargo build --release), makes an ECDSA P-256 certificate with openssl, and for
each kind of backend (--backend) starts two backends and terminates TLS with ALPN h2 in
front of them with:
  - lb: --tls-listen, defaults (1 worker), -q
  - nginx: 1 worker, `http2 on` (or `listen ... ssl http2` before nginx 1.25),
    upstream keepalive 64                                               (if installed)
  - HAProxy: nbthread 1, mode http, bind ... ssl crt ... alpn h2,http/1.1,
    http-reuse always                                                   (if installed)
Alternating rounds, medians and ranges, of
  h2load -c CLIENTS -m STREAMS -D DURATION --log-file ...
for GET / (a short answer) and GET /bytes/16384 (16 KiB answers): requests/s (2xx answers
over the run), the proxy's CPU seconds (user + system from /proc, all its processes),
requests per CPU second, and p50/p99 latency computed from h2load's per-request log.
Then, in front of the last kind of backends, with fresh proxies:
  - memory: RSS added per idle h2 connection (handshake, one GET answered, then idle),
    scripts/h2_clients.py idle, opened 10 at a time
  - rapid reset: scripts/h2_clients.py flood (streams opened and reset at once, a new
    connection each time the proxy ends one) beside the same h2load GET / load; the
    h2load rate with and without the flood, alternating, and the proxy's RSS throughout

The results (markdown) go to stdout, progress and any h2load failure output to stderr.

Options:
  --backend KIND        demo, nginx or both (default both; nginx needs nginx installed)
  --rounds N            alternating rounds per target (default 3)
  --duration SECS       length of each h2load run, whole seconds (default 5)
  --clients N           h2load clients, -c (default 100)
  --streams N           h2load concurrent streams per client, -m (default 10)
  --threads N           h2load threads, -t (default 1)
  --idle-connections N  idle h2 connections for the memory test (default 2000)
  --skip-memory         no memory per idle connection
  --skip-flood          no rapid-reset flood
  --no-build            use target/release/{lb,backend} as they are
  -h, --help            this help

Needs h2load (Debian: nghttp2-client), openssl, curl and python3; the memory and flood
tests need the Python package h2 (pip install h2). nginx and haproxy are used when found.
h2load, the proxy and the backends share the CPUs: the ratios say more than the figures.
TXT
}

script=compare_h2.sh
# shellcheck source=scripts/bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/bench/lib.sh"

backend_kinds=(demo nginx)
rounds=3 duration=5 clients=100 streams=10 h2_threads=1 idle_conns=2000
skip_memory=0 skip_flood=0 build=1
while (($#)); do
    case $1 in
        --backend)
            need_arg "$@"
            case $2 in
                demo | nginx) backend_kinds=("$2") ;;
                both) backend_kinds=(demo nginx) ;;
                *) die_usage "bad --backend: $2 (demo, nginx or both)" ;;
            esac
            shift 2
            ;;
        --rounds) need_arg "$@"; rounds=$2; shift 2 ;;
        --duration) need_arg "$@"; duration=$2; shift 2 ;;
        --clients) need_arg "$@"; clients=$2; shift 2 ;;
        --streams) need_arg "$@"; streams=$2; shift 2 ;;
        --threads) need_arg "$@"; h2_threads=$2; shift 2 ;;
        --idle-connections) need_arg "$@"; idle_conns=$2; shift 2 ;;
        --skip-memory) skip_memory=1; shift ;;
        --skip-flood) skip_flood=1; shift ;;
        --no-build) build=0; shift ;;
        -h | --help) usage; exit 0 ;;
        *) die_usage "unknown option: $1" ;;
    esac
done
duration=${duration%s}
for n in "$rounds" "$duration" "$clients" "$streams" "$h2_threads" "$idle_conns"; do
    positive "$n" || die_usage "not a positive number: $n"
done
((h2_threads <= clients)) || die_usage "--threads must not exceed --clients"
cd "$bench_root"

missing=()
h2load_bin=$(find_tool h2load) || missing+=("h2load (nghttp2-client)")
openssl_bin=$(find_tool openssl) || missing+=(openssl)
curl_bin=$(find_tool curl) || missing+=(curl)
find_tool python3 >/dev/null || missing+=(python3)
((build == 0)) || command -v cargo >/dev/null || missing+=("cargo (https://rustup.rs)")
((${#missing[@]} == 0)) || die "not installed: ${missing[*]}"
nginx_bin=$(find_tool nginx) || nginx_bin=""
haproxy_bin=$(find_tool haproxy) || haproxy_bin=""
[[ -n $nginx_bin ]] || log "nginx not found: skipped, and so are nginx backends"
[[ -n $haproxy_bin ]] || log "haproxy not found: skipped"
[[ -n $nginx_bin ]] || backend_kinds=("${backend_kinds[@]/nginx/}")
if ((!skip_memory || !skip_flood)) && ! python3 -c 'import h2' 2>/dev/null; then
    log "the Python package h2 is missing (pip install h2): no memory or flood test"
    skip_memory=1 skip_flood=1
fi

# --- build and certificate -----------------------------------------------------------------

if ((build)); then
    log "cargo build --release --bins"
    cargo build --release --bins >&2
fi
for b in lb backend; do
    [[ -x target/release/$b ]] || die "target/release/$b is missing (run without --no-build)"
done
# A private copy, so that a rebuild elsewhere during the run changes nothing here.
mkdir "$tmp/bin"
cp target/release/lb target/release/backend "$tmp/bin/"
lb_bin=$tmp/bin/lb backend_bin=$tmp/bin/backend floor_bin=""
# shellcheck source=scripts/bench/proxies.sh
source scripts/bench/proxies.sh

cert=$tmp/cert.pem key=$tmp/key.pem
"$openssl_bin" req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
    -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -keyout "$key" -out "$cert" 2>/dev/null
cat "$cert" "$key" >"$tmp/haproxy.pem"
chmod 644 "$key" "$tmp/haproxy.pem"

# nginx 1.25 and later take `http2 on;`; before, only `listen ... ssl http2;`.
nginx_h2_listen="ssl" nginx_h2_directive="http2 on;"
if [[ -n $nginx_bin ]]; then
    mkdir -p "$tmp/nginx-probe"
    {
        nginx_main "$tmp/nginx-probe"
        echo "http {"
        nginx_http_common "$tmp/nginx-probe"
        printf '    server {\n        listen 127.0.0.1:1 ssl;\n        http2 on;\n'
        printf '        ssl_certificate %s;\n        ssl_certificate_key %s;\n    }\n}\n' "$cert" "$key"
    } >"$tmp/nginx-probe/nginx.conf"
    if ! "$nginx_bin" -t -p "$tmp/nginx-probe" -e "$tmp/nginx-probe/error.log" \
        -c "$tmp/nginx-probe/nginx.conf" >/dev/null 2>&1; then
        nginx_h2_listen="ssl http2" nginx_h2_directive=""
    fi
fi

# --- proxies ---------------------------------------------------------------------------------

read -r -a port_pool <<<"$(free_ports 30 "${BENCH_PORTS:-20000-32000}")"
((${#port_pool[@]} == 30)) || die "could not find 30 free ports on 127.0.0.1"
next_port=0
take_port() {
    port=${port_pool[$next_port]}
    next_port=$((next_port + 1))
}

nginx_h2_conf() {
    local port=$1 dir=$2 b1=$3 b2=$4
    mkdir -p "$dir"
    {
        nginx_main "$dir"
        echo "http {"
        nginx_http_common "$dir"
        cat <<EOF
    upstream backends {
        server 127.0.0.1:$b1;
        server 127.0.0.1:$b2;
        keepalive 64;
        keepalive_requests 1000000;
    }
    server {
        listen 127.0.0.1:$port $nginx_h2_listen;
        $nginx_h2_directive
        ssl_certificate $cert;
        ssl_certificate_key $key;
        ssl_protocols TLSv1.2 TLSv1.3;
        location / {
            proxy_pass http://backends;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
EOF
    } >"$dir/nginx.conf"
}

# Waits until PID answers https://127.0.0.1:PORT/ over HTTP/2; shows its log and exits if not.
wait_h2_ready() {
    local name=$1 pid=$2 port=$3 logf=$4 i v=""
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        v=$("$curl_bin" -sk --http2 --max-time 2 -o /dev/null -w '%{http_version}' "https://127.0.0.1:$port/" || true)
        [[ $v != 2 ]] || return 0
        sleep 0.1
    done
    log "$name does not answer HTTP/2 on https://127.0.0.1:$port (curl saw HTTP version '$v'); its log:"
    sed 's/^/    /' "$logf" >&2
    exit 1
}

declare -A PORT
# Starts proxy T (lb, nginx, haproxy) in front of backend ports B1 and B2; sets PORT, LABEL,
# PIDS, LOGF and started_pid.
start_h2_proxy() {
    local t=$1 b1=$2 b2=$3 port logf pid
    take_port
    logf=$tmp/$t-$port.log
    case $t in
        lb)
            LABEL[$t]="lb"
            "$lb_bin" --tls-listen "127.0.0.1:$port" --tls-cert "$cert" --tls-key "$key" \
                -b "127.0.0.1:$b1" -b "127.0.0.1:$b2" --admin off -q \
                --max-connections $((idle_conns + 1000)) 2>"$logf" &
            ;;
        nginx)
            LABEL[$t]="nginx"
            nginx_h2_conf "$port" "$tmp/nginx-$port" "$b1" "$b2"
            "$nginx_bin" -p "$tmp/nginx-$port" -e "$tmp/nginx-$port/error.log" \
                -c "$tmp/nginx-$port/nginx.conf" 2>"$logf" &
            ;;
        haproxy)
            LABEL[$t]="HAProxy"
            haproxy_conf http "$port" "$tmp/haproxy-$port.cfg" "$b1" "$b2"
            sed -i "s|^    bind 127.0.0.1:$port\$|& ssl crt $tmp/haproxy.pem alpn h2,http/1.1|" "$tmp/haproxy-$port.cfg"
            "$haproxy_bin" -db -f "$tmp/haproxy-$port.cfg" >"$logf" 2>&1 &
            ;;
    esac
    pid=$!
    pids+=("$pid")
    wait_h2_ready "${LABEL[$t]}" "$pid" "$port" "$logf"
    PORT[$t]=$port LOGF[$t]=$logf started_pid=$pid
    PIDS[$t]=$(proxy_pids "$t" "$pid")
}

# --- load ------------------------------------------------------------------------------------

# Runs h2load against URL for SECS; prints "requests/s answered p50_ms p99_ms failed", where
# answered counts 2xx answers and failed every other request h2load finished (its
# "failed", which includes errored streams and 4xx/5xx answers, and 3xx, which it counts
# as successes). Any failure shows the command and its whole output.
h2load_run() {
    local url=$1 secs=$2 logfile=$tmp/h2load.tsv out cmd
    # -T: h2load has been seen to spin for minutes after its duration, its clients stopped
    # but their connections open (against nginx and HAProxy); `timeout` is the last resort,
    # and a run it cuts off counts as answering nothing.
    cmd=("$h2load_bin" -t "$h2_threads" -c "$clients" -m "$streams" -D "$secs" -T $((secs + 10))
        --log-file "$logfile" "$url")
    out=$(timeout -k 5 $((secs + 60)) "${cmd[@]}" 2>&1) || log "    h2load exited with status $?: ${cmd[*]}"
    read -r secs_run ok bad <<<"$(awk '
        /^finished in/ { t = $3 + 0 }
        /^requests:/ { failed = $10 }
        /^status codes:/ { ok = $3; redirects = $5 }
        END { printf "%s %d %d\n", t, ok, failed + redirects }' <<<"$out")"
    if ((bad > 0 || ok == 0)); then
        log "    h2load: $bad failed requests (or none answered): ${cmd[*]}"
        printf '%s\n' "$out" | sed 's/^/      /' >&2
    fi
    awk -F'\t' '$2 >= 200 && $2 < 300 { print $3 }' "$logfile" | sort -n | awk \
        -v ok="$ok" -v t="${secs_run:-0}" -v bad="$bad" '
        { v[NR] = $1 }
        function pct(p,   i) { i = int(NR * p + 0.999999); if (i < 1) i = 1; return v[i] / 1000 }
        END {
            printf "%.0f %d %.3f %.3f %d\n", (t > 0 ? ok / t : 0), ok, (NR ? pct(0.5) : 0), (NR ? pct(0.99) : 0), bad
        }'
    rm -f "$logfile"
}

# "median (low-high)" of a list, each figure through FORMAT (a printf format).
med_range() {
    local fmtstr=$1 list=$2
    awk -v m="$(median "$list")" -v f="$fmtstr" -v l="$list" 'BEGIN {
        n = split(l, v, " "); lo = v[1]; hi = v[1]
        for (i = 2; i <= n; i++) { if (v[i] < lo) lo = v[i]; if (v[i] > hi) hi = v[i] }
        printf f " (" f "-" f ")", m, lo, hi }'
}

# What h2load negotiates with URL: "TLSv1.3 h2".
h2load_proto() {
    "$h2load_bin" -n 1 -c 1 "$1" 2>&1 | awk '/^TLS Protocol:/ { v = $3 } /^Application protocol:/ { p = $3 }
        END { print (v ? v : "?") " " (p ? p : "?") }'
}

declare -A P50 RPCS FAILS PROTO
# Alternating rounds of h2load against PATH on each target in $@.
bench_h2() {
    local path=$1 t r rps ok p50 p99 bad c0 ticks
    shift
    for t in "$@"; do
        RPS[$t]="" RPCS[$t]="" P50[$t]="" P99[$t]="" FAILS[$t]=0
        PROTO[$t]=$(h2load_proto "https://127.0.0.1:${PORT[$t]}$path")
        log "  warm-up: ${LABEL[$t]} (${PROTO[$t]})"
        h2load_run "https://127.0.0.1:${PORT[$t]}$path" 1 >/dev/null
    done
    for ((r = 1; r <= rounds; r++)); do
        for t in "$@"; do
            # shellcheck disable=SC2086  # a list of pids
            c0=$(cpu_ticks ${PIDS[$t]})
            read -r rps ok p50 p99 bad <<<"$(h2load_run "https://127.0.0.1:${PORT[$t]}$path" "$duration")"
            # shellcheck disable=SC2086
            ticks=$(($(cpu_ticks ${PIDS[$t]}) - c0))
            rpcs=$(awk -v n="$ok" -v t="$ticks" -v hz="$clk_tck" 'BEGIN { printf "%.0f", (t > 0 ? n * hz / t : 0) }')
            RPS[$t]+=" $rps" RPCS[$t]+=" $rpcs" P50[$t]+=" $p50" P99[$t]+=" $p99"
            FAILS[$t]=$((FAILS[$t] + bad))
            log "  round $r/$rounds  $(printf '%-8s' "${LABEL[$t]}") $rps req/s  CPU $(awk -v t="$ticks" -v hz="$clk_tck" \
                'BEGIN { printf "%.2f", t / hz }') s  $rpcs req per CPU s  p50 $p50 ms  p99 $p99 ms  failed $bad"
        done
    done
}

# The better of nginx's and HAProxy's medians in ARRAY (max, or min with "min").
best_other() {
    local -n arr=$1
    local t list=""
    for t in nginx haproxy; do
        [[ -n ${arr[$t]:-} ]] && list+="$(median "${arr[$t]}")"$'\n'
    done
    [[ -n $list ]] || return 0
    if [[ ${2:-max} == min ]]; then sort -g <<<"$list" | awk 'NF { print; exit }'; else sort -g <<<"$list" | tail -1; fi
}

shape_table() {
    local t bp bl
    echo "| proxy | negotiated | requests/s | requests per CPU second | p50 latency | p99 latency | failed requests (all rounds) |"
    echo "|---|---|---:|---:|---:|---:|---:|"
    for t in "$@"; do
        echo "| ${LABEL[$t]} | ${PROTO[$t]} | $(med_range %.0f "${RPS[$t]}") | $(med_range %.0f "${RPCS[$t]}") |" \
            "$(med_range %.2f "${P50[$t]}") ms | $(med_range %.2f "${P99[$t]}") ms | ${FAILS[$t]} |"
    done
    echo
    bp=$(best_other RPCS) bl=$(best_other P99 min)
    if [[ -n $bp ]]; then
        echo "lb against the better of nginx and HAProxy: requests per CPU second" \
            "$(ratio "$(median "${RPCS[lb]}")" "$bp") (goal at least 1.2), p99 latency" \
            "$(ratio "$(median "${P99[lb]}")" "$bl") (goal at most 1.1)."
        echo
    fi
}

loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
targets=(lb)
[[ -z $nginx_bin ]] || targets+=(nginx)
[[ -z $haproxy_bin ]] || targets+=(haproxy)
report=$tmp/report.md
first_line() { { "$@" 2>&1 || true; } | awk 'NR == 1'; }
{
    echo "## HTTP/2 over TLS: lb, nginx and HAProxy ($(date -u '+%Y-%m-%d %H:%M') UTC)"
    echo
    echo "- $(nproc) CPUs, shared by h2load, the proxy and the backends; $(first_line "$lb_bin" --version)," \
        "$("$h2load_bin" --version | awk '{ print $2 }')${nginx_bin:+, $(first_line "$nginx_bin" -v | sed 's/^nginx version: //')}${haproxy_bin:+, HAProxy $(first_line "$haproxy_bin" -v | awk '{ print $3 }')}"
    echo "- \`h2load -t$h2_threads -c$clients -m$streams -D$duration\`, ALPN h2, ECDSA P-256;" \
        "$rounds alternating rounds, medians and (ranges); load average at start $(loadavg)"
    echo "- requests/s counts 2xx answers; CPU is the proxy's user + system time from /proc" \
        "(nginx: master and worker); p50/p99 from h2load's per-request log"
    echo
} >"$report"

backend_section() {
    local kind=$1 b1 b2 t path title
    take_port; b1=$port
    take_port; b2=$port
    start_backend "$kind" "${kind}1" "$b1"
    start_backend "$kind" "${kind}2" "$b2"
    log "$kind backends on 127.0.0.1:$b1 and :$b2"
    for t in "${targets[@]}"; do start_h2_proxy "$t" "$b1" "$b2"; done
    for path in / /bytes/16384; do
        if [[ $path == / ]]; then title="GET / (a short answer)"; else title="GET /bytes/16384 (16 KiB answers)"; fi
        log "[$kind backends] $title"
        bench_h2 "$path" "${targets[@]}"
        {
            echo "### $kind backends: $title"
            echo
            shape_table "${targets[@]}"
        } >>"$report"
    done
    echo "Load average after the $kind backends: $(loadavg)." >>"$report"
    echo >>"$report"
    # The backends stay up: the last kind's serve the memory and flood tests.
    for t in "${targets[@]}"; do stop "$(cut -d' ' -f1 <<<"${PIDS[$t]}")"; done
    last_b1=$b1 last_b2=$b2
}

ran=""
for kind in "${backend_kinds[@]}"; do
    [[ -n $kind ]] || continue
    backend_section "$kind"
    ran=$kind
done
[[ -n $ran ]] || die "no backends to run in front of"

# --- memory per idle h2 connection ------------------------------------------------------------

if ((!skip_memory)); then
    log "memory: $idle_conns idle h2 connections per proxy, in front of $ran backends"
    mem_rows=()
    for t in "${targets[@]}"; do
        start_h2_proxy "$t" "$last_b1" "$last_b2"
        for _ in 1 2 3 4; do "$curl_bin" -sk --http2 -o /dev/null "https://127.0.0.1:${PORT[$t]}/" || true; done
        sleep 0.5
        # shellcheck disable=SC2086  # a list of pids
        before=$(rss_kib ${PIDS[$t]})
        out=$tmp/idle-$t.out
        python3 scripts/h2_clients.py idle --port "${PORT[$t]}" -n "$idle_conns" --in-flight 10 \
            >"$out" 2>"$tmp/idle-$t.err" &
        cpid=$!
        pids+=("$cpid")
        line=""
        for ((i = 0; i < 1800; i++)); do
            line=$(grep -m1 '^READY' "$out" 2>/dev/null || true)
            [[ -z $line ]] && kill -0 "$cpid" 2>/dev/null && sleep 0.1 && continue
            break
        done
        # lb lets go of what the opening used after two housekeeping periods of a second.
        sleep 3
        # shellcheck disable=SC2086
        after=$(rss_kib ${PIDS[$t]})
        stop "$cpid"
        [[ ! -s $tmp/idle-$t.err ]] || sed 's/^/    h2_clients: /' "$tmp/idle-$t.err" >&2
        open=$(sed -nE 's/.*open=([0-9]+).*/\1/p' <<<"$line")
        failed=$(sed -nE 's/.*failed=([0-9]+).*/\1/p' <<<"$line")
        per="-"
        if ((${open:-0} > 0)); then
            per=$(awk -v a="$after" -v b="$before" -v n="$open" 'BEGIN { printf "%.2f", (a - b) / n }')
        fi
        log "  ${LABEL[$t]}: ${open:-0} idle h2 connections (${failed:-?} failed), RSS $before -> $after KiB, $per KiB each"
        mem_rows+=("| ${LABEL[$t]} | ${open:-0} | ${failed:-?} | $before | $after | $per |")
        stop "$(cut -d' ' -f1 <<<"${PIDS[$t]}")"
    done
    {
        echo "### Memory per idle h2 connection ($ran backends)"
        echo
        echo "Each connection: TLS handshake with ALPN h2, SETTINGS exchanged, one \`GET /\` answered,"
        echo "then idle; opened 10 at a time into a fresh proxy; RSS 3 s after the last one opened."
        echo
        echo "| proxy | open | failed | RSS before (KiB) | RSS with them (KiB) | KiB per connection |"
        echo "|---|---:|---:|---:|---:|---:|"
        printf '%s\n' "${mem_rows[@]}"
        echo
    } >>"$report"
fi

# --- rapid reset ------------------------------------------------------------------------------

if ((!skip_flood)); then
    log "rapid reset: h2load GET / alone and beside a flood, alternating, in front of $ran backends"
    flood_rows=()
    for t in "${targets[@]}"; do
        start_h2_proxy "$t" "$last_b1" "$last_b2"
        h2load_run "https://127.0.0.1:${PORT[$t]}/" 1 >/dev/null
        # shellcheck disable=SC2086  # a list of pids
        rss0=$(rss_kib ${PIDS[$t]})
        quiet="" flooded="" peak=$rss0 floods="" qfail=0 ffail=0
        for ((r = 1; r <= rounds; r++)); do
            read -r rps _ _ _ bad <<<"$(h2load_run "https://127.0.0.1:${PORT[$t]}/" "$duration")"
            quiet+=" $rps" qfail=$((qfail + bad))
            python3 scripts/h2_clients.py flood --port "${PORT[$t]}" --seconds $((duration + 2)) \
                >"$tmp/flood.out" 2>"$tmp/flood.err" &
            fpid=$!
            pids+=("$fpid")
            sleep 1
            h2load_run "https://127.0.0.1:${PORT[$t]}/" "$duration" >"$tmp/flooded.out" &
            hpid=$!
            while kill -0 "$hpid" 2>/dev/null; do
                # shellcheck disable=SC2086
                rss=$(rss_kib ${PIDS[$t]})
                ((rss <= peak)) || peak=$rss
                sleep 0.5
            done
            wait "$hpid" || true
            read -r rps _ _ _ bad <"$tmp/flooded.out"
            flooded+=" $rps" ffail=$((ffail + bad))
            wait "$fpid" || true
            stop "$fpid"
            [[ ! -s $tmp/flood.err ]] || sed 's/^/    h2_clients: /' "$tmp/flood.err" | sort | uniq -c >&2
            floods=$(cat "$tmp/flood.out")
            log "  round $r/$rounds  ${LABEL[$t]}: quiet $(median "${quiet##* }") req/s, beside the flood $rps req/s;" \
                "RSS peak $peak KiB; $floods"
        done
        # shellcheck disable=SC2086
        rss1=$(rss_kib ${PIDS[$t]})
        flood_rows+=("| ${LABEL[$t]} | $(med_range %.0f "$quiet") | $(med_range %.0f "$flooded") |"\
" $(ratio "$(median "$flooded")" "$(median "$quiet")") | $qfail / $ffail | $rss0 | $peak | $rss1 | ${floods#FLOOD } |")
        stop "$(cut -d' ' -f1 <<<"${PIDS[$t]}")"
    done
    {
        echo "### Rapid reset (CVE-2023-44487) beside a well-behaved client ($ran backends)"
        echo
        echo "The well-behaved client is the same \`h2load -c$clients -m$streams -D$duration\` on GET /;"
        echo "the flood is one Python client (scripts/h2_clients.py flood) opening streams and resetting"
        echo "them at once, 100 per write, reconnecting whenever the proxy ends its connection; it"
        echo "competes for the same CPUs, so part of any drop is the flooder's own CPU use."
        echo "Rounds alternate quiet and flooded runs; RSS is sampled every 0.5 s during the flooded runs."
        echo
        echo "| proxy | quiet req/s | req/s beside the flood | ratio | failed (quiet / flooded) | RSS before (KiB) | RSS peak | RSS after | the flood, last round |"
        echo "|---|---:|---:|---:|---:|---:|---:|---:|---|"
        printf '%s\n' "${flood_rows[@]}"
        echo
    } >>"$report"
fi

echo "Load average at the end: $(loadavg)." >>"$report"
log "done"
cat "$report"
