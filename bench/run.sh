#!/usr/bin/env bash
# rqrs beside Python RQ 2.12 on this machine, in one run: builds the release binaries, runs
# rqrs-bench against a private redis-server, then against a SQLite file in a temporary
# directory, then the Python baseline (../shared/bench) on its own private server. Figures go to
# $OUT (rqrs.json, rqrs-sqlite.json, rq-baseline.json and the logs).
#   REPS=3 SCALE=1 bench/run.sh          (SCALE=0.05 REPS=1 for a quick look; PYTHON=0: rqrs only)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
reps=${REPS:-3}
scale=${SCALE:-1}
port=${PORT:-6398}
out=${OUT:-$root/target/bench-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out"
command -v redis-server >/dev/null || { echo "redis-server missing: apt-get install -y redis-server" >&2; exit 1; }

cd "$root"
cargo build --release -q -p rqrs-bench -p rqrs-cli --bins --examples

if redis-cli -h 127.0.0.1 -p "$port" ping >/dev/null 2>&1; then
  echo "something already listens on 127.0.0.1:$port; pick another PORT" >&2; exit 1
fi
dir=$(mktemp -d)
redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$dir" \
  --daemonize no --logfile "$dir/redis.log" &
pid=$!
cleanup() { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
for _ in $(seq 100); do redis-cli -h 127.0.0.1 -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done

echo "== rqrs (redis-server $(redis-server --version | awk '{print $3}'), $(nproc) cores)"
timeout -k 10 1800 target/release/rqrs-bench --url "redis://127.0.0.1:$port" \
  --worker target/release/examples/worker --reps "$reps" --scale "$scale" --json "$out/rqrs.json" \
  2>&1 | tee "$out/rqrs.log"
cleanup
trap - EXIT

echo "== rqrs (SQLite, a file in $(df --output=fstype /tmp | tail -1) /tmp)"
db=$(mktemp -d)
trap 'rm -rf "$db"' EXIT
timeout -k 10 1800 target/release/rqrs-bench --url "sqlite://$db/jobs.db" \
  --worker target/release/examples/worker --reps "$reps" --scale "$scale" \
  --json "$out/rqrs-sqlite.json" 2>&1 | tee "$out/rqrs-sqlite.log"
rm -rf "$db"
trap - EXIT

[ "${PYTHON:-1}" = 0 ] && { echo "results in $out"; exit 0; }
echo "== Python RQ 2.12 baseline"
shared=$(cd "$root/../shared/bench" && pwd)
OUT="$out" REPS="$reps" SCALE="$scale" ONLY=enq,proc,lat,cmd,startup \
  VARIANTS=enq_one,enq_many,fork_noop,simple_noop,simple2_noop,latency "$shared/run_rq_baseline.sh"
echo "results in $out"
