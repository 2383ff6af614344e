# Starting the things the benchmarks measure: demo or nginx backends, and lb, nginx, HAProxy
# and the minimal relay as proxies in front of them. Source after lib.sh; set lb_bin,
# backend_bin, floor_bin, nginx_bin and haproxy_bin first (an empty one is not available).
# shellcheck shell=bash

lb_extra=(-q --admin off)
# nginx: one worker, connections for the memory test and then some.
nginx_conns=$((nofile > 10300 ? 10240 : nofile - 64))
# HAProxy needs about two descriptors per connection.
haproxy_maxconn=$(((nofile - 200) / 2 < 10000 ? (nofile - 200) / 2 : 10000))

# nginx stream module: built in, or a dynamic module that is installed, or neither.
nginx_stream_load=""
nginx_stream=0
detect_nginx_stream() {
    local nginx_v modpath so
    [[ -n $nginx_bin ]] || return 0
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
}
detect_nginx_stream

# The top of every nginx config: one worker, in the foreground, files under DIR.
nginx_main() {
    local dir=$1
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
}

# The temporary paths and settings every nginx http block here shares.
nginx_http_common() {
    local dir=$1
    cat <<EOF
    access_log off;
    client_body_temp_path $dir/client_body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
    # lb and HAProxy put no cap on requests per keep-alive connection; nor does this.
    keepalive_requests 1000000;
EOF
}

# An nginx config for a proxy of MODE (http|tcp|mirror) on PORT in front of the backend
# ports that follow. mirror: each request goes to the first backend, and nginx's mirror
# module sends a copy to each of the others (their answers are dropped), the nearest
# nginx has to lb's POST fan-out.
nginx_conf() {
    local mode=$1 port=$2 dir=$3 b i
    shift 3
    mkdir -p "$dir"
    {
        [[ $mode != tcp ]] || echo "$nginx_stream_load"
        nginx_main "$dir"
        if [[ $mode == tcp ]]; then
            echo "stream {"
            echo "    upstream backends {"
            for b in "$@"; do echo "        server 127.0.0.1:$b;"; done
            printf '    }\n    server {\n        listen 127.0.0.1:%s;\n        proxy_pass backends;\n    }\n}\n' "$port"
            return
        fi
        echo "http {"
        nginx_http_common "$dir"
        i=0
        for b in "$@"; do
            i=$((i + 1))
            if [[ $mode == mirror ]]; then
                printf '    upstream b%s {\n        server 127.0.0.1:%s;\n        keepalive 64;\n    }\n' "$i" "$b"
            fi
        done
        echo "    upstream backends {"
        for b in "$@"; do echo "        server 127.0.0.1:$b;"; done
        cat <<EOF
        keepalive 64;
        keepalive_requests 1000000;
    }
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    server {
        listen 127.0.0.1:$port;
EOF
        if [[ $mode == mirror ]]; then
            echo "        location / {"
            echo "            proxy_pass http://b1;"
            for ((i = 2; i <= $#; i++)); do echo "            mirror /mirror$i;"; done
            echo "        }"
            for ((i = 2; i <= $#; i++)); do
                printf '        location = /mirror%s {\n            internal;\n            proxy_pass http://b%s$request_uri;\n        }\n' "$i" "$i"
            done
        else
            echo "        location / {"
            echo "            proxy_pass http://backends;"
            echo "        }"
        fi
        printf '    }\n}\n'
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

# Starts a proxy of KIND (lb|nginx|haproxy|floor) in MODE (http|tcp, or mirror for nginx) on
# PORT for the backend ports that follow; sets started_pid and started_log and PIDS[KIND],
# the processes whose CPU time counts. lb also gets the arguments in lb_more.
started_pid=""
started_log=""
lb_more=()
# The binary of each lb kind other than plain "lb" (compare.sh --also).
declare -A LB_BIN
start_proxy() {
    local kind=$1 mode=$2 port=$3 name logf b
    shift 3
    name="$kind-$mode-$port"
    logf="$tmp/$name.log"
    case $kind in
        lb*)
            local args=(-l "127.0.0.1:$port" -m "$mode" "${lb_extra[@]}" "${lb_more[@]}")
            for b in "$@"; do args+=(-b "127.0.0.1:$b"); done
            "${LB_BIN[$kind]:-$lb_bin}" "${args[@]}" 2>"$logf" &
            ;;
        nginx*)
            nginx_conf "$mode" "$port" "$tmp/$name" "$@"
            "$nginx_bin" -p "$tmp/$name" -e "$tmp/$name/error.log" -c "$tmp/$name/nginx.conf" 2>"$logf" &
            logf="$tmp/$name/error.log"
            ;;
        haproxy*)
            haproxy_conf "$mode" "$port" "$tmp/$name.cfg" "$@"
            "$haproxy_bin" -db -f "$tmp/$name.cfg" >"$logf" 2>&1 &
            ;;
        floor*)
            local args=("127.0.0.1:$port")
            for b in "$@"; do args+=("127.0.0.1:$b"); done
            "$floor_bin" "${args[@]}" 2>"$logf" &
            ;;
    esac
    started_pid=$!
    started_log=$logf
    pids+=("$started_pid")
    wait_ready "$kind ($mode)" "$started_pid" "$port" "$logf"
    PIDS[$kind]=$(proxy_pids "$kind" "$started_pid")
}

# Starts a backend of KIND (demo|nginx) named NAME on PORT. Both answer GET / with a short
# text, GET /bytes/N with N bytes for the sizes the benchmarks use, and POST /register with
# 201. An nginx backend runs one worker, as the demo backend runs one thread.
start_backend() {
    local kind=$1 name=$2 port=$3 dir size
    if [[ $kind == demo ]]; then
        "$backend_bin" --listen "127.0.0.1:$port" --name "$name" 2>"$tmp/$name.log" &
        pids+=($!)
        wait_ready "backend $name" "$!" "$port" "$tmp/$name.log"
        return
    fi
    dir=$tmp/$name
    mkdir -p "$dir/html/bytes"
    for size in 16384 262144; do
        head -c "$size" /dev/zero | tr '\0' 'x' >"$dir/html/bytes/$size"
    done
    {
        nginx_main "$dir"
        echo "http {"
        nginx_http_common "$dir"
        cat <<EOF
    default_type text/plain;
    server {
        listen 127.0.0.1:$port backlog=4096;
        root $dir/html;
        location = / {
            return 200 "Hello from $name";
        }
        location /register {
            return 201 "registered\n";
        }
    }
}
EOF
    } >"$dir/nginx.conf"
    "$nginx_bin" -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" 2>"$tmp/$name.log" &
    pids+=($!)
    wait_ready "nginx backend $name" "$!" "$port" "$tmp/$name.log"
}
