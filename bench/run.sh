#!/usr/bin/env bash
# rqrs's benchmark and its peers', in one run, printing one table: builds the release binaries,
# runs rqrs-bench against a private redis-server, then against a SQLite file in a temporary
# directory, then the peers harness (../shared/bench/peers/run.sh: rqrs, BullMQ, apalis, Celery,
# Python RQ, ChasquiMQ, ArdiQ, arq, each on its own private redis-server), then bench/report.py,
# which prints the table and draws $OUT/throughput.png. Everything goes to $OUT.
#   REPS=3 SCALE=1 bench/run.sh                 the full run (about an hour on 2 cores)
#   SCALE=0.05 REPS=1 bench/run.sh              a quick look
#   PEERS=0 PLOT=0 SCALE=0.01 REPS=1 bench/run.sh   rqrs alone, seconds (CI's smoke test)
# PEERS: 0 for none, else passed to the peers harness (a subset such as rqrs,bullmq; default
#   all). PLOT=0: no plot (the plot needs matplotlib, installed into target/venv-plot).
# REDIS_SERVER: the redis-server binary for every part of the run (default: the one on PATH).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
reps=${REPS:-3}
scale=${SCALE:-1}
peers=${PEERS:-all}
out=${OUT:-$root/target/bench-$(date +%Y%m%d-%H%M%S)}
server=${REDIS_SERVER:-$(command -v redis-server || true)}
[ -x "$server" ] || { echo "redis-server missing: apt-get install -y redis-server" >&2; exit 1; }
mkdir -p "$out"

cd "$root"
cargo build --release -q -p rqrs-bench -p rqrs-cli --bins --examples

# A free loopback port, never the shared default.
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
dir=$(mktemp -d)
"$server" --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$dir" \
  --daemonize no --logfile "$dir/redis.log" &
pid=$!
cleanup() { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
for _ in $(seq 100); do redis-cli -h 127.0.0.1 -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done

echo "== rqrs ($("$server" --version | awk '{print $3}'), $(nproc) cores)"
timeout -k 10 5400 target/release/rqrs-bench --url "redis://127.0.0.1:$port" \
  --worker target/release/examples/worker --reps "$reps" --scale "$scale" --json "$out/rqrs.json" \
  >"$out/rqrs.log" 2>&1 || { tail -30 "$out/rqrs.log" >&2; exit 1; }
cleanup
trap - EXIT

echo "== rqrs (SQLite, a file in $(df --output=fstype /tmp | tail -1) /tmp)"
db=$(mktemp -d)
trap 'rm -rf "$db"' EXIT
timeout -k 10 3600 target/release/rqrs-bench --url "sqlite://$db/jobs.db" \
  --worker target/release/examples/worker --reps "$reps" --scale "$scale" \
  --json "$out/rqrs-sqlite.json" >"$out/rqrs-sqlite.log" 2>&1 \
  || { tail -30 "$out/rqrs-sqlite.log" >&2; exit 1; }
rm -rf "$db"
trap - EXIT

if [ "$peers" != 0 ]; then
  echo "== peers (../shared/bench/peers/run.sh)"
  [ "$peers" = all ] && unset PEERS || export PEERS="$peers"
  SCALE="$scale" REPS="$reps" REDIS_SERVER="$server" PEERS_OUT="$out/peers" \
    "$root/../shared/bench/peers/run.sh" >"$out/peers.log" 2>&1 \
    || { tail -30 "$out/peers.log" >&2; exit 1; }
fi

plot=()
if [ "${PLOT:-1}" != 0 ]; then
  venv=$root/target/venv-plot
  if ! "$venv/bin/python" -c 'import matplotlib' 2>/dev/null; then
    python3 -m venv "$venv" && "$venv/bin/pip" install -q 'matplotlib==3.9.2' >&2
  fi
  plot=(--plot "$out/throughput.png")
  python=$venv/bin/python
else
  python=python3
fi
echo
"$python" bench/report.py "$out" "${plot[@]}" | tee "$out/report.md"
echo "results in $out"
