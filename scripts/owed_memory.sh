#!/usr/bin/env bash
# Memory per POST that lb still owes a backend (not a CI test): what --max-pending and
# --max-pending-bytes cost at their limits.
#
#   scripts/owed_memory.sh                          # 50 000 writes of 0, 1 KiB and 16 KiB bodies
#   scripts/owed_memory.sh --writes 20000 --bodies 0,4096 --ports 20000-20999 --no-build
#
# One healthy demo backend and one address where nothing listens (lb cannot reach it, so
# every write stays owed to it, parked). For each body size a fresh lb takes 1000 writes to
# warm up, then --writes more; the growth of its resident memory divided by the writes is
# the cost of one owed write. Everything listens on 127.0.0.1.
set -euo pipefail

script=owed_memory.sh
# shellcheck source=scripts/bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/bench/lib.sh"

writes=50000 bodies=0,1024,16384 build=1 port_range=20000-31999
while [[ $# -gt 0 ]]; do
    case $1 in
        --writes) need_arg "$@"; writes=$2; shift 2 ;;
        --bodies) need_arg "$@"; bodies=$2; shift 2 ;;
        --ports) need_arg "$@"; port_range=$2; shift 2 ;;
        --no-build) build=0; shift ;;
        -h | --help) sed -n '2,11p' "$0"; exit 0 ;;
        *) die_usage "unknown option: $1" ;;
    esac
done
positive "$writes" || die_usage "bad --writes: $writes"

cd "$bench_root"
if ((build)); then
    cargo build --release --bins >&2
fi
read -r pb pdead plb <<<"$(free_ports 3 "$port_range")"
target/release/backend --listen "127.0.0.1:$pb" --name healthy 2>"$tmp/b.log" &
pids+=($!)
wait_ready backend "$!" "$pb" "$tmp/b.log"

# Sends N POSTs with a body of SIZE bytes over 8 keep-alive connections; exits non-zero
# unless every one was answered 2xx.
post() {
    python3 - "$plb" "$1" "$2" <<'PY'
import socket, sys, threading
port, n, size = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
body = b"x" * size
bad = []
def run(count, k):
    s = socket.create_connection(("127.0.0.1", port))
    f = s.makefile("rb")
    for i in range(count):
        s.sendall(b"POST /sink?w=%d-%d HTTP/1.1\r\nHost: m\r\nContent-Length: %d\r\n\r\n" % (k, i, size) + body)
        status = f.readline().split()[1]
        length = 0
        while (line := f.readline()) not in (b"\r\n", b""):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        f.read(length)
        if not status.startswith(b"2"):
            bad.append(status)
threads = [threading.Thread(target=run, args=(n // 8 + (k < n % 8), k)) for k in range(8)]
for t in threads: t.start()
for t in threads: t.join()
sys.exit(f"{len(bad)} writes not answered 2xx, e.g. {bad[0]}" if bad else 0)
PY
}

echo "| body | owed writes | resident growth | per owed write |"
echo "|---|---|---|---|"
IFS=, read -r -a sizes <<<"$bodies"
for size in "${sizes[@]}"; do
    target/release/lb -l "127.0.0.1:$plb" -b "127.0.0.1:$pb" -b "127.0.0.1:$pdead" --admin off \
        --health-interval 500ms --max-pending 1000000 --max-pending-bytes 4g 2>"$tmp/lb.log" &
    lb_pid=$!
    pids+=("$lb_pid")
    wait_ready lb "$lb_pid" "$plb" "$tmp/lb.log"
    sleep 1 # the first checks find the dead address
    post 1000 "$size"
    before=$(rss_kib "$lb_pid")
    post "$writes" "$size"
    after=$(rss_kib "$lb_pid")
    echo "| $size B | $writes | $(((after - before) / 1024)) MiB | $(((after - before) * 1024 / writes)) B |"
    stop "$lb_pid"
done
