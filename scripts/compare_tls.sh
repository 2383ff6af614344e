#!/usr/bin/env bash
# lb, nginx and HAProxy terminating TLS with one ECDSA P-256 certificate in front of the same
# two demo backends, in one run: full handshakes and resumed ones (a new connection for
# every request), keep-alive HTTPS requests, the CPU time each costs the proxy, and resident
# memory per idle TLS connection. lb runs twice, once per rustls crypto provider (aws-lc-rs, ring).
# Everything listens on 127.0.0.1 and is stopped on exit.  scripts/compare_tls.sh --help
set -euo pipefail

usage() {
    cat <<'TXT'
Usage: scripts/compare_tls.sh [options] > results.md

Builds lb twice (cargo build --release with the default aws-lc-rs provider, and with
--no-default-features --features ring into target/ring), makes an ECDSA P-256 certificate
with openssl, starts two backends (demo or nginx), and terminates TLS 1.3 in front of them
with:
  - lb (aws-lc-rs) and lb (ring): --tls-listen, defaults, -q
  - nginx: 1 worker, ssl_session_tickets on, upstream keepalive 64        (if installed)
  - HAProxy: nbthread 1, bind ... ssl crt, http-reuse always              (if installed)
Alternating rounds, medians:
  - handshakes: 4 parallel `openssl s_time -new -www /`, each opening one connection after
    another with a full handshake (no session offered) and one HTTP/1.0 GET on it (wrk
    cannot do this: with Connection: close it resumes its sessions)
  - resumed connections: wrk (OpenSSL) with Connection: close, a new connection for every
    request, each resuming the session of the one before with its TLS 1.3 ticket
  - keep-alive: wrk (OpenSSL), each connection reused for every request
CPU time is the proxy's own user + system time from /proc over each run; the report gives
medians and, below the table, each figure's range over the rounds. Memory: RSS added per
idle TLS connection (handshake done, one request answered), scripts/idle_clients.py --tls.

Options:
  --backend KIND        demo or nginx (default demo; nginx needs nginx installed)
  --rounds N            alternating rounds per target (default 3)
  --duration SECS       length of each run, whole seconds (default 5)
  --connections N       wrk connections (default 50)
  --handshakers N       parallel s_time clients (default 4)
  --idle-connections N  idle TLS connections for the memory test (default 2000)
  --skip-ring           lb with aws-lc-rs only
  --no-build            use target/release/{lb,backend} and target/ring/release/lb as they are
  -h, --help            this help

Needs wrk, python3, openssl and curl; nginx and haproxy are used when found.
TXT
}

script=compare_tls.sh
# shellcheck source=scripts/bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/bench/lib.sh"

rounds=3 duration=5 idle_conns=2000 build=1 ring=1 handshakers=4 backend_kind=demo
while (($#)); do
    case $1 in
        --backend)
            need_arg "$@"
            [[ $2 == demo || $2 == nginx ]] || die_usage "bad --backend: $2 (demo or nginx)"
            backend_kind=$2
            shift 2
            ;;
        --rounds) need_arg "$@"; rounds=$2; shift 2 ;;
        --duration) need_arg "$@"; duration=$2; shift 2 ;;
        --connections) need_arg "$@"; connections=$2; shift 2 ;;
        --handshakers) need_arg "$@"; handshakers=$2; shift 2 ;;
        --idle-connections) need_arg "$@"; idle_conns=$2; shift 2 ;;
        --skip-ring) ring=0; shift ;;
        --no-build) build=0; shift ;;
        -h | --help) usage; exit 0 ;;
        *) die_usage "unknown option: $1" ;;
    esac
done
duration=${duration%s}
for n in "$rounds" "$connections" "$idle_conns" "$handshakers" "$duration"; do
    positive "$n" || die_usage "not a positive number: $n"
done
cd "$bench_root"

missing=()
wrk_bin=$(find_tool wrk) || missing+=(wrk)
find_tool python3 >/dev/null || missing+=(python3)
openssl_bin=$(find_tool openssl) || missing+=(openssl)
curl_bin=$(find_tool curl) || missing+=(curl)
((${#missing[@]} == 0)) || die "not installed: ${missing[*]}"
nginx_bin=$(find_tool nginx) || nginx_bin=""
haproxy_bin=$(find_tool haproxy) || haproxy_bin=""
[[ -n $nginx_bin ]] || log "nginx not found: skipped"
[[ -n $haproxy_bin ]] || log "haproxy not found: skipped"
[[ $backend_kind == demo || -n $nginx_bin ]] || die "--backend nginx: nginx is not installed"
# shellcheck source=scripts/bench/proxies.sh
source scripts/bench/proxies.sh
# --- build and certificate -----------------------------------------------------------------

if ((build)); then
    log "cargo build --release --bins"
    cargo build --release --bins >&2
    if ((ring)); then
        log "cargo build --release --bin lb --no-default-features --features ring --target-dir target/ring"
        cargo build --release --bin lb --no-default-features --features ring --target-dir target/ring >&2
    fi
fi
mkdir "$tmp/bin"
cp target/release/lb target/release/backend "$tmp/bin/"
backend_bin=$tmp/bin/backend
if ((ring)); then
    [[ -x target/ring/release/lb ]] || die "target/ring/release/lb is missing (run without --no-build)"
    cp target/ring/release/lb "$tmp/bin/lb-ring"
fi

cert=$tmp/cert.pem key=$tmp/key.pem
"$openssl_bin" req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
    -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -keyout "$key" -out "$cert" 2>/dev/null
cat "$cert" "$key" >"$tmp/haproxy.pem"
chmod 644 "$key" "$tmp/haproxy.pem"

# --- proxies ---------------------------------------------------------------------------------

read -r b1 b2 p_lb p_ring p_nginx p_haproxy <<<"$(free_ports 6 "${BENCH_PORTS:-20000-32000}")"
for b in "$b1" "$b2"; do start_backend "$backend_kind" "b$b" "$b"; done

# Waits until PID answers https://127.0.0.1:PORT/; shows its log and exits if it does not.
wait_tls_ready() {
    local name=$1 pid=$2 port=$3 logf=$4 i
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        if "$curl_bin" -skf --max-time 2 -o /dev/null "https://127.0.0.1:$port/"; then
            return 0
        fi
        sleep 0.1
    done
    log "$name does not answer on https://127.0.0.1:$port; its log:"
    sed 's/^/    /' "$logf" >&2
    exit 1
}

nginx_tls_conf() {
    local port=$1 dir=$2
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
        listen 127.0.0.1:$port ssl;
        ssl_certificate $cert;
        ssl_certificate_key $key;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_tickets on;
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

# proxies.sh's HAProxy configuration, its frontend terminating TLS.
haproxy_tls_conf() {
    local port=$1 file=$2
    haproxy_conf http "$port" "$file" "$b1" "$b2"
    sed -i "s|^    bind 127.0.0.1:$port\$|& ssl crt $tmp/haproxy.pem alpn http/1.1|" "$file"
}

# Starts target T (lb, ring, nginx, haproxy) on its port; sets URL, LABEL, PIDS, LOGF.
start_target() {
    local t=$1 port logf pid
    logf=$tmp/$t.log
    case $t in
        lb | ring)
            port=$p_lb bin=$tmp/bin/lb LABEL[$t]="lb (aws-lc-rs)"
            [[ $t == lb ]] || port=$p_ring bin=$tmp/bin/lb-ring LABEL[$t]="lb (ring)"
            "$bin" --tls-listen "127.0.0.1:$port" --tls-cert "$cert" --tls-key "$key" \
                -b "127.0.0.1:$b1" -b "127.0.0.1:$b2" --admin off -q \
                --max-connections $((idle_conns + 1000)) 2>"$logf" &
            pid=$!
            ;;
        nginx)
            port=$p_nginx LABEL[$t]="nginx"
            nginx_tls_conf "$port" "$tmp/nginx"
            "$nginx_bin" -p "$tmp/nginx" -e "$tmp/nginx/error.log" -c "$tmp/nginx/nginx.conf" 2>"$logf" &
            pid=$!
            ;;
        haproxy)
            port=$p_haproxy LABEL[$t]="HAProxy"
            haproxy_tls_conf "$port" "$tmp/haproxy.cfg"
            "$haproxy_bin" -db -f "$tmp/haproxy.cfg" >"$logf" 2>&1 &
            pid=$!
            ;;
    esac
    pids+=("$pid")
    wait_tls_ready "${LABEL[$t]}" "$pid" "$port" "$logf"
    URL[$t]="https://127.0.0.1:$port/"
    LOGF[$t]=$logf
    # nginx's CPU time and memory are its master's and its worker's.
    if [[ $t == nginx ]]; then PIDS[$t]=$(proxy_pids nginx "$pid"); else PIDS[$t]=$pid; fi
    PORT[$t]=$port
}

declare -A PORT
targets=(lb)
((ring)) && targets+=(ring)
[[ -z $nginx_bin ]] || targets+=(nginx)
[[ -z $haproxy_bin ]] || targets+=(haproxy)
for t in "${targets[@]}"; do start_target "$t"; done

# --- load ------------------------------------------------------------------------------------

# Full handshakes against PORT for `duration` seconds from parallel s_time clients; prints
# "handshakes/s handshakes".
handshake_run() {
    local port=$1 i spids=() total
    for ((i = 0; i < handshakers; i++)); do
        "$openssl_bin" s_time -connect "127.0.0.1:$port" -new -www / -time "$duration"             >"$tmp/s_time-$i" 2>&1 &
        spids+=($!)
    done
    wait "${spids[@]}" || true
    total=$(cat "$tmp"/s_time-* | awk '/connections in .* real seconds/ { n += $1 } END { print n + 0 }')
    rm -f "$tmp"/s_time-*
    echo "$(awk -v n="$total" -v s="$duration" 'BEGIN { printf "%.0f", n / s }') $total"
}

log "full handshakes: a new TLS connection for every request"
declare -A HS_RPS HS_CPU
for t in "${targets[@]}"; do HS_RPS[$t]="" HS_CPU[$t]=""; done
for ((r = 1; r <= rounds; r++)); do
    for t in "${targets[@]}"; do
        # shellcheck disable=SC2086  # a list of pids
        c0=$(cpu_ticks ${PIDS[$t]})
        read -r rate total <<<"$(handshake_run "${PORT[$t]}")"
        # shellcheck disable=SC2086
        cpu=$(awk -v t="$(($(cpu_ticks ${PIDS[$t]}) - c0))" -v hz="$clk_tck" -v n="$total" \
            'BEGIN { if (n > 0) printf "%.2f", t * 1e6 / hz / n; else print 0 }')
        HS_RPS[$t]+=" $rate" HS_CPU[$t]+=" $cpu"
        log "  round $r/$rounds  $(printf '%-16s' "${LABEL[$t]}") $rate handshakes/s  proxy CPU $cpu µs each"
    done
done
for t in "${targets[@]}"; do HS_RPS[$t]=$(median "${HS_RPS[$t]}"); done
log "keep-alive HTTPS requests"
duration=${duration}s
bench_alternating "${targets[@]}"
declare -A KA_RPS KA_CPU
for t in "${targets[@]}"; do KA_RPS[$t]=${RPS[$t]} KA_CPU[$t]=${CPU[$t]}; done
# wrk with Connection: close opens a new connection for every request and resumes the
# session of the one before (a TLS 1.3 ticket), as a browser or an HTTP client library does.
log "resumed connections: a new TLS connection for every request, resuming its session"
printf 'wrk.headers["Connection"] = "close"\n' >"$tmp/close.lua"
for t in "${targets[@]}"; do SCRIPT[$t]=$tmp/close.lua; done
bench_alternating "${targets[@]}"
declare -A RES_RPS RES_CPU
for t in "${targets[@]}"; do RES_RPS[$t]=${RPS[$t]} RES_CPU[$t]=${CPU[$t]}; done

# RSS added per idle TLS connection, opened 10 at a time.
declare -A MEM
for t in "${targets[@]}"; do
    # shellcheck disable=SC2086  # a list of pids
    before=$(rss_kib ${PIDS[$t]})
    out=$tmp/idle-$t.out
    python3 scripts/idle_clients.py --tls --port "${PORT[$t]}" -n "$idle_conns" \
        --in-flight 10 --wait signal >"$out" 2>"$tmp/idle-$t.err" &
    cpid=$!
    pids+=("$cpid")
    line=""
    for ((i = 0; i < 1800; i++)); do
        line=$(grep -m1 '^READY' "$out" 2>/dev/null || true)
        [[ -z $line ]] && kill -0 "$cpid" 2>/dev/null && sleep 0.1 && continue
        break
    done
    sleep 1
    # shellcheck disable=SC2086
    after=$(rss_kib ${PIDS[$t]})
    stop "$cpid"
    open=$(sed -nE 's/.*open=([0-9]+).*/\1/p' <<<"$line")
    MEM[$t]="-"
    if ((${open:-0} > 0)); then
        MEM[$t]=$(awk -v a="$after" -v b="$before" -v n="$open" 'BEGIN { printf "%.2f", (a - b) / n }')
    fi
    log "  ${LABEL[$t]}: $open idle TLS connections, RSS $before -> $after KiB, ${MEM[$t]} KiB each"
done

# --- report ----------------------------------------------------------------------------------

range() { tr ' ' '\n' <<<"$1" | grep -v '^$' | sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%.1f-%.1f", lo, hi }'; }
per_cpu_s() { awk -v us="$1" 'BEGIN { if (us > 0) printf "%.0f", 1e6 / us; else print "-" }'; }
{
    echo "## TLS termination: lb, nginx and HAProxy ($(date -u +%Y-%m-%d))"
    echo
    echo "ECDSA P-256 certificate, TLS 1.3 (X25519); handshakes from $handshakers parallel"
    echo "\`openssl s_time -new -www /\`, resumed connections from \`wrk -t1 -c$connections\` with"
    echo "\`Connection: close\`, keep-alive from the same without it; $duration per run,"
    echo "$rounds alternating rounds, medians; $(nproc) CPUs shared by the load, the proxy and two"
    echo "$backend_kind backends. RSS per idle connection: $idle_conns connections opened 10 at a time."
    echo
    echo "| proxy | full handshakes/s | CPU per handshake | handshakes per CPU second | resumed connections/s | CPU per resumed connection | resumed per CPU second | keep-alive req/s | CPU per request | requests per CPU second | RSS per idle TLS connection |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    for t in "${targets[@]}"; do
        ka_cpu=$(median "${KA_CPU[$t]}") res_cpu=$(median "${RES_CPU[$t]}")
        echo "| ${LABEL[$t]} | $(fmt_int "${HS_RPS[$t]}") | $(fmt_us "${HS_CPU[$t]}") | $(per_cpu_s "$(median "${HS_CPU[$t]}")") |" \
            "$(fmt_int "$(median "${RES_RPS[$t]}")") | $(fmt_us "${RES_CPU[$t]}") | $(per_cpu_s "$res_cpu") |" \
            "$(fmt_int "$(median "${KA_RPS[$t]}")") | $(fmt_us "${KA_CPU[$t]}") | $(per_cpu_s "$ka_cpu") | ${MEM[$t]} KiB |"
    done
    echo
    echo "Ranges over the rounds (lowest-highest): CPU per full handshake, per resumed connection,"
    echo "per keep-alive request."
    echo
    for t in "${targets[@]}"; do
        echo "- ${LABEL[$t]}: $(range "${HS_CPU[$t]}") µs, $(range "${RES_CPU[$t]}") µs, $(range "${KA_CPU[$t]}") µs"
    done
    echo
    best_hs="" best_res="" best_ka=""
    for t in nginx haproxy; do
        [[ -n ${PIDS[$t]:-} ]] || continue
        best_hs+=" $(per_cpu_s "$(median "${HS_CPU[$t]}")")"
        best_res+=" $(per_cpu_s "$(median "${RES_CPU[$t]}")")"
        best_ka+=" $(per_cpu_s "$(median "${KA_CPU[$t]}")")"
    done
    if [[ -n $best_hs ]]; then
        best_hs=$(tr ' ' '\n' <<<"$best_hs" | sort -g | tail -1)
        best_res=$(tr ' ' '\n' <<<"$best_res" | sort -g | tail -1)
        best_ka=$(tr ' ' '\n' <<<"$best_ka" | sort -g | tail -1)
        echo "lb (aws-lc-rs) against the better of nginx and HAProxy, per CPU second: full handshakes" \
            "$(ratio "$(per_cpu_s "$(median "${HS_CPU[lb]}")")" "$best_hs") (goal 1.3), resumed connections" \
            "$(ratio "$(per_cpu_s "$(median "${RES_CPU[lb]}")")" "$best_res") (goal 1.3), keep-alive requests" \
            "$(ratio "$(per_cpu_s "$(median "${KA_CPU[lb]}")")" "$best_ka") (goal 1.1)."
        echo
    fi
}
log "done"
