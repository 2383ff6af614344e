#!/usr/bin/env bash
# Runs lb's fuzz targets (fuzz/): each for SECONDS, one after the other, and prints how
# many inputs each tried. A crash stops the run, leaves the input in
# fuzz/artifacts/TARGET/ and exits non-zero.
#
#   scripts/fuzz.sh                  # every target, 60 s each
#   scripts/fuzz.sh 600 chunked      # one target, 10 minutes
#
# Needs the nightly toolchain; installs cargo-fuzz when it is missing. New inputs that
# reach new code go to fuzz/corpus/TARGET (not committed); fuzz/seeds/TARGET is the
# seed corpus kept in the repository.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

seconds=${1:-60}
shift || true
targets=("$@")
((${#targets[@]})) || targets=(request_head response_head chunked journal_records h2_frames h2_client_frames hpack_decode grpc_health)
[[ $seconds =~ ^[0-9]+$ ]] && ((seconds > 0)) || {
    echo "usage: scripts/fuzz.sh [SECONDS] [TARGET...]" >&2
    exit 2
}

if ! rustup run nightly cargo --version >/dev/null 2>&1; then
    echo "fuzz.sh: the nightly toolchain is missing (rustup toolchain install nightly)" >&2
    exit 1
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "fuzz.sh: installing cargo-fuzz" >&2
    cargo +nightly install cargo-fuzz --locked
fi

for t in "${targets[@]}"; do
    mkdir -p "corpus/$t"
    log=$(mktemp)
    echo "fuzz.sh: $t for ${seconds}s" >&2
    # -max_len 4096: enough for every rule, and small inputs run fast.
    if ! cargo +nightly fuzz run "$t" "corpus/$t" "seeds/$t" -- \
        -max_total_time="$seconds" -max_len=4096 -print_final_stats=1 >"$log" 2>&1; then
        tail -n 40 "$log" >&2
        rm -f "$log"
        echo "fuzz.sh: $t FAILED (the input is in fuzz/artifacts/$t/)" >&2
        exit 1
    fi
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1)
    echo "fuzz.sh: $t ok: ${runs:-?} inputs in ${seconds}s, ${cov:-cov: ?}, corpus $(ls "corpus/$t" | wc -l)"
    rm -f "$log"
done
