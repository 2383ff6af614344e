#!/usr/bin/env bash
# Builds lb, starts three demo backends on 127.0.0.1:9001-9003 and the balancer on
# 127.0.0.1:8080 in front of them, journaling owed POST copies in ./lb-journal. Extra
# arguments go to lb: ./setup.sh -s least-connections
# Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")"

if ! command -v cargo >/dev/null; then
    echo "setup.sh: cargo not found; install the Rust toolchain (https://rustup.rs)" >&2
    exit 1
fi
cargo build --release --bins

# Job control puts each child in a process group of its own, so Ctrl-C reaches only this
# script. lb then gets exactly one SIGTERM and drains to its end (a second signal would cut
# the drain short), and the backends stay up until lb has delivered every write it owes.
set -m
pids=()
lb_pid=""
stop() {
    trap - EXIT INT TERM
    if [ -n "$lb_pid" ] && kill -0 "$lb_pid" 2>/dev/null; then
        echo "setup.sh: stopping lb (it finishes what is in progress first)" >&2
        kill -TERM "$lb_pid" 2>/dev/null || true
        wait "$lb_pid" 2>/dev/null || true
    fi
    kill "${pids[@]}" 2>/dev/null || true
    wait 2>/dev/null || true
}
trap stop EXIT INT TERM

for i in 1 2 3; do
    ./target/release/backend --listen "127.0.0.1:900$i" --name "server$i" &
    pids+=($!)
done
./target/release/lb -l 127.0.0.1:8080 --journal ./lb-journal \
    -b 127.0.0.1:9001 -b 127.0.0.1:9002 -b 127.0.0.1:9003 "$@" &
lb_pid=$!

sleep 0.5
if ! kill -0 "$lb_pid" 2>/dev/null; then
    echo "setup.sh: lb did not start (see the error above)" >&2
    exit 1
fi
cat <<'TXT'

lb is running on http://127.0.0.1:8080 in front of server1-3 (127.0.0.1:9001-9003).
Try:
  curl localhost:8080/                 # Hello from server1, then server2, server3, ...
  curl localhost:8080/100              # pi to 100 decimal places
  curl -X POST 'localhost:8080/register?username=jack&password=secret'
  curl localhost:9002/users/jack       # every backend got the write
  curl localhost:8081/metrics          # Prometheus metrics; status page at localhost:8081/stats
Ctrl-C stops everything.
TXT
wait "$lb_pid"
