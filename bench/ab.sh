#!/usr/bin/env bash
# Before and after, in one run: builds rqrs-bench and the worker example of another revision
# (a worktree under target/ab/), then runs both sides' rqrs-bench in turn against one private
# redis-server, ROUNDS times (the order alternates from round to round), and prints each
# figure's median for both sides.
#   bench/ab.sh REV                     (ROUNDS=4 SCALE=1 by default; PORT=6399)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
rev=${1:?give the revision to compare with, e.g. bench/ab.sh HEAD~3}
rounds=${ROUNDS:-4}
scale=${SCALE:-1}
port=${PORT:-6399}
out=${OUT:-$root/target/ab/results-$(date +%Y%m%d-%H%M%S)}
old=$root/target/ab/old
command -v redis-server >/dev/null || { echo "redis-server missing: apt-get install -y redis-server" >&2; exit 1; }

cd "$root"
if [ -d "$old" ]; then
  git -C "$old" checkout -q --detach "$rev"
else
  git worktree add -q --detach "$old" "$rev"
fi
echo "building $rev and the working tree (release)"
(cd "$old" && CARGO_TARGET_DIR="$old/target" cargo build --release -q -p rqrs-bench -p rqrs-cli --bins --examples)
cargo build --release -q -p rqrs-bench -p rqrs-cli --bins --examples
mkdir -p "$out"

if redis-cli -h 127.0.0.1 -p "$port" ping >/dev/null 2>&1; then
  echo "something already listens on 127.0.0.1:$port; pick another PORT" >&2; exit 1
fi
dir=$(mktemp -d)
redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$dir" \
  --daemonize no --logfile "$dir/redis.log" &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
for _ in $(seq 100); do redis-cli -h 127.0.0.1 -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done

for round in $(seq "$rounds"); do
  if [ $((round % 2)) = 1 ]; then order="old new"; else order="new old"; fi
  for side in $order; do
    if [ "$side" = old ]; then bin=$old/target/release; else bin=$root/target/release; fi
    echo "== round $round/$rounds: $side"
    timeout -k 10 1800 "$bin/rqrs-bench" --url "redis://127.0.0.1:$port" \
      --worker "$bin/examples/worker" --reps 1 --scale "$scale" --json "$out/$side-$round.json" \
      > "$out/$side-$round.log" 2>&1
  done
done

python3 - "$out" "$rounds" "$rev" <<'PY'
import json, statistics, sys
out, rounds, rev = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def figures(side):
    rows = {}
    for r in range(1, rounds + 1):
        data = json.load(open(f"{out}/{side}-{r}.json"))
        for key, value in data.items():
            if isinstance(value, dict) and "median" in value:
                rows.setdefault(key, []).append(value["median"])
        for key in ("start_p50_ms", "start_p99_ms", "enqueue_call_p50_ms"):
            rows.setdefault(f"latency_{key}", []).append(data["latency"][key])
        for key, value in data["commands"]["per_job"].items():
            rows.setdefault(f"commands_{key}", []).append(value)
    return rows
old, new = figures("old"), figures("new")
print(f"medians of {rounds} rounds; {rev} (old) vs the working tree (new); results in {out}")
print(f"{'figure':32} {'old':>12} {'new':>12} {'new/old':>8}")
for key in sorted(old):
    a, b = statistics.median(old[key]), statistics.median(new[key])
    print(f"{key:32} {a:12.2f} {b:12.2f} {b / a if a else float('nan'):8.3f}")
PY
