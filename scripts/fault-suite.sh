#!/usr/bin/env bash
# The fault suite at a large scale: builds the release test binary of
# crates/rqrs-cli/tests/faults (the binary CI runs small) and runs it with the scale below, one
# scenario at a time, then prints the results as a Markdown table (docs/reliability.md keeps the
# latest). Any RQRS_FAULT_* set in the environment wins; arguments go to the test binary (a
# name filter, say: `scripts/fault-suite.sh kills`).
#
# Needs redis-server (apt-get install -y redis-server; its Sentinel mode too). Worker logs are kept in
# $RQRS_FAULT_LOG_DIR (default: target/fault-suite/logs).
set -euo pipefail
cd "$(dirname "$0")/.."

export RQRS_FAULT_JOBS="${RQRS_FAULT_JOBS:-10000}"
export RQRS_FAULT_KILLS="${RQRS_FAULT_KILLS:-20}"
export RQRS_FAULT_WORKERS="${RQRS_FAULT_WORKERS:-4}"
export RQRS_FAULT_COLD_STOPS="${RQRS_FAULT_COLD_STOPS:-10}"
export RQRS_FAULT_RESTARTS="${RQRS_FAULT_RESTARTS:-6}"
export RQRS_FAULT_REDIS_DOWN_MS="${RQRS_FAULT_REDIS_DOWN_MS:-3000}"
export RQRS_FAULT_FAILOVERS="${RQRS_FAULT_FAILOVERS:-4}"
export RQRS_FAULT_DUP_JOBS="${RQRS_FAULT_DUP_JOBS:-80000}"
export RQRS_FAULT_DUP_WORKERS="${RQRS_FAULT_DUP_WORKERS:-4}"
export RQRS_FAULT_FUZZ_CASES="${RQRS_FAULT_FUZZ_CASES:-5000}"
export RQRS_FAULT_MIXED_JOBS="${RQRS_FAULT_MIXED_JOBS:-3000}"
export RQRS_FAULT_TIMEOUT="${RQRS_FAULT_TIMEOUT:-900}"
# A fresh seed every run (the fuzzing explores new inputs); printed in each summary to replay.
export RQRS_FAULT_SEED="${RQRS_FAULT_SEED:-$(( (RANDOM << 30) ^ (RANDOM << 15) ^ RANDOM ))}"

# Absolute: the test binary runs in its crate's directory.
out="$(realpath -m "${CARGO_TARGET_DIR:-target}/fault-suite")"
mkdir -p "$out"
export RQRS_FAULT_LOG_DIR="${RQRS_FAULT_LOG_DIR:-$out/logs}"
export RQRS_FAULT_REPORT="$out/report.tsv"
rm -f "$RQRS_FAULT_REPORT"
rm -rf "$RQRS_FAULT_LOG_DIR"

echo "fault suite: $RQRS_FAULT_JOBS jobs, $RQRS_FAULT_KILLS kills and $RQRS_FAULT_COLD_STOPS cold stops of $RQRS_FAULT_WORKERS workers," \
  "$RQRS_FAULT_RESTARTS Redis restarts (every second one down ${RQRS_FAULT_REDIS_DOWN_MS} ms)," \
  "$RQRS_FAULT_FAILOVERS Sentinel failovers," \
  "$RQRS_FAULT_DUP_WORKERS workers x $RQRS_FAULT_DUP_JOBS jobs, $RQRS_FAULT_FUZZ_CASES fuzzed hashes" >&2
start=$(date +%s)
status=0
cargo test --release --package rqrs-cli --test faults -- --test-threads 1 "$@" || status=$?
echo "fault suite: $(( $(date +%s) - start )) s in all (build included)" >&2

if [ -s "$RQRS_FAULT_REPORT" ]; then
  echo
  echo "| scenario | jobs | faults | lost | duplicated | stuck | recovery (max) | elapsed |"
  echo "|---|---|---|---|---|---|---|---|"
  awk -F '\t' '{ printf "| %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7, $8 }' \
    "$RQRS_FAULT_REPORT"
  echo
  awk -F '\t' '{ printf "- %s: %s\n", $1, $9 }' "$RQRS_FAULT_REPORT"
fi
exit "$status"
