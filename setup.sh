#!/usr/bin/env bash
# Builds lb, starts three demo backends on 127.0.0.1:9001-9003 and the balancer on
# 127.0.0.1:8080 in front of them, journaling the POST copies lb owes in ./lb-journal. Extra
# arguments go to lb: ./setup.sh -s least-connections
# Each process is checked as it starts, and the banner says what really runs. Ctrl-C stops
# everything.
#
# For tests, the environment may move it: SETUP_LISTEN (lb's -l), SETUP_BACKEND_PORTS
# ("9001 9002 9003"), SETUP_JOURNAL (the journal directory), and SETUP_BIN (a directory
# with lb and backend already built: no build).
set -euo pipefail
cd "$(dirname "$0")"

listen=${SETUP_LISTEN:-127.0.0.1:8080}
read -r -a ports <<<"${SETUP_BACKEND_PORTS:-9001 9002 9003}"
bin=${SETUP_BIN:-}
journal=${SETUP_JOURNAL:-./lb-journal}

if [ -z "$bin" ]; then
    if ! command -v cargo >/dev/null; then
        echo "setup.sh: cargo not found; install the Rust toolchain (https://rustup.rs)" >&2
        exit 1
    fi
    cargo build --release --bins
    bin=./target/release
fi

logs=$(mktemp -d)
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
    if [ "${#pids[@]}" -gt 0 ]; then
        kill "${pids[@]}" 2>/dev/null || true
    fi
    wait 2>/dev/null || true
    rm -rf "$logs"
}
trap stop EXIT INT TERM

# Waits until process $1 has written "listening on" to log $2; fails if it exits first.
started() {
    local pid=$1 log=$2
    for _ in $(seq 100); do
        grep -q "listening on" "$log" 2>/dev/null && return 0
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

backends=()
for i in "${!ports[@]}"; do
    name="server$((i + 1))"
    addr="127.0.0.1:${ports[$i]}"
    # stderr goes to the terminal and to a file that tells when it listens.
    "$bin/backend" --listen "$addr" --name "$name" 2> >(tee "$logs/$name" >&2) &
    pids+=($!)
    if ! started "$!" "$logs/$name"; then
        echo "setup.sh: $name could not start on $addr (its error is above); is something" \
            "else listening there? 'ss -ltnp sport = :${ports[$i]}' tells what" >&2
        exit 1
    fi
    backends+=(-b "$addr")
done

# The journal keeps POST copies; TCP mode has none, and lb refuses --journal with it.
journal_args=(--journal "$journal")
case " $* " in
*" -m tcp "* | *" --mode tcp "* | *" --mode=tcp "* | *" -mtcp "*) journal_args=() ;;
esac
"$bin/lb" -l "$listen" "${journal_args[@]}" "${backends[@]}" "$@" 2> >(tee "$logs/lb" >&2) &
lb_pid=$!
if ! started "$lb_pid" "$logs/lb"; then
    echo "setup.sh: lb did not start (its error is above)" >&2
    exit 1
fi
sleep 0.2 # the admin line follows the listening one

# What lb says it runs: "listening on ADDR (MODE, STRATEGY) in front of B1 B2 ...".
running=$(grep -m1 -o "listening on .*" "$logs/lb" | sed 's/"}$//')
addr=$(awk '{print $3}' <<<"$running")
mode=$(sed -E 's/.*\((HTTP|TCP), .*/\1/' <<<"$running")
strategy=$(sed -E 's/.*\((HTTP|TCP), ([^)]*)\).*/\2/' <<<"$running")
in_front=$(sed -E 's/.* in front of //' <<<"$running")
admin=$(grep -m1 -o "admin interface on [^ ]*" "$logs/lb" | awk '{print $4}' | sed 's/:$//' || true)
# A wildcard listener is reached on loopback.
url=$(sed -E 's/^0\.0\.0\.0:/127.0.0.1:/; s/^\[::\]:/[::1]:/' <<<"$addr")
some_backend="127.0.0.1:${ports[$((${#ports[@]} > 1 ? 1 : 0))]}"

echo
echo "lb is running on http://$addr in $mode mode ($strategy) in front of $in_front"
echo "Demo backends: ${ports[*]/#/127.0.0.1:} (server1-${#ports[@]})."
if [ "${#journal_args[@]}" -gt 0 ]; then
    echo "POST copies still owed are journaled in $journal: they survive a crash of lb."
fi
echo "Try:"
echo "  curl $url/                 # Hello from server1, then server2, ..."
echo "  curl $url/100              # pi to 100 decimal places"
echo "  curl -X POST '$url/register?username=jack&password=secret'"
if [ "$mode" = HTTP ] && [[ " $* " != *" --fanout "* ]]; then
    echo "  curl $some_backend/users/jack    # every backend got the write"
elif [ "$mode" = HTTP ]; then
    echo "  curl $some_backend/users/jack    # the backends chosen by --fanout got the write"
else
    echo "  curl $some_backend/users/jack    # TCP mode: only the backend that took the connection has it"
fi
if [ -n "$admin" ]; then
    echo "  curl $admin/metrics    # Prometheus metrics; status page at http://$admin/stats"
else
    echo "  (admin interface off: no /metrics or /stats)"
fi
echo "Ctrl-C stops everything."
wait "$lb_pid"
