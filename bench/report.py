"""Prints the one table of a bench/run.sh run: rqrs's own figures (rqrs-bench on Redis and on
SQLite) beside the peers' (../shared/bench/peers, when they ran), then rqrs's other figures;
with --plot PNG also draws throughput against concurrency for rqrs and each peer (needs
matplotlib: run.sh makes a virtualenv for it).

    python3 bench/report.py OUT [--plot OUT/throughput.png]

OUT holds rqrs.json, rqrs-sqlite.json and, from the peers harness, peers/<date>.json.
Standard library only, but for the plot.
"""
import argparse
import glob
import json
import math
import os


def load(path):
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def median(d, key):
    """The median of figure `key` of rqrs-bench's JSON `d`, or None."""
    if d is None:
        return None
    value = d
    for part in key.split("/"):
        value = value.get(part) if isinstance(value, dict) else None
        if value is None:
            return None
    return value["median"] if isinstance(value, dict) and "median" in value else value


def peer(summary, key):
    """The median of a peers-harness figure, or None."""
    entry = summary.get(key)
    return entry["median"] if isinstance(entry, dict) else None


def fmt(value, digits=0):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if digits == 0:
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"


def pair(a, b, digits=2):
    if a is None and b is None:
        return "—"
    return f"{fmt(a, digits)} / {fmt(b, digits)}"


def mib(kib):
    return None if kib is None else kib / 1024


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--plot")
    a = ap.parse_args()
    redis = load(os.path.join(a.out, "rqrs.json"))
    sqlite = load(os.path.join(a.out, "rqrs-sqlite.json"))
    runs = sorted(glob.glob(os.path.join(a.out, "peers", "*.json")))
    peers = load(runs[-1]) if runs else None
    summary = (peers or {}).get("summary", {})

    columns = []  # (title, {row: text})
    for title, d in (("rqrs, Redis (rqrs-bench)", redis), ("rqrs, SQLite (rqrs-bench)", sqlite)):
        if d is None:
            continue
        lat = d.get("latency", {})
        columns.append((title, {
            "c1": fmt(median(d, "worker_c1")),
            "c64": fmt(median(d, "worker_c64")),
            "cpu": pair(median(d, "worker_c1_redis_cpu_us"), median(d, "worker_c64_redis_cpu_us"), 0),
            "one": fmt(median(d, "enqueue_one")),
            "bulk": fmt(median(d, "enqueue_many")),
            "lat": pair(lat.get("start_p50_ms"), lat.get("start_p99_ms")),
            "rss": pair(mib(median(d, "worker_c1_peak_rss_kib")), mib(median(d, "worker_c64_peak_rss_kib")), 1),
        }))
    for name, s in summary.items():
        # rqrs's enqueue and latency figures in the harness are rqrs-bench's, run by it.
        # Python RQ's are its baseline's (../shared/bench/run_rq_baseline.sh).
        own = "rqrs_bench." if name == "rqrs" else ""
        p50, p99 = peer(s, own + "latency.start_p50_ms"), peer(s, own + "latency.start_p99_ms")
        if name == "rq":
            p50, p99 = peer(s, "baseline.latency.start_p50"), peer(s, "baseline.latency.start_p99")
        columns.append((f"{name} (peers harness)", {
            "c1": fmt(peer(s, "worker_c1.rate")),
            "c64": fmt(peer(s, "worker_c64.rate")),
            "cpu": pair(peer(s, "worker_c1.redis_cpu_us_per_job"), peer(s, "worker_c64.redis_cpu_us_per_job"), 0),
            "one": fmt(peer(s, "rqrs_bench.enqueue_one") or peer(s, "baseline.enq_one") or peer(s, "enqueue_one.rate")),
            "bulk": fmt(peer(s, "rqrs_bench.enqueue_many") or peer(s, "baseline.enq_many") or peer(s, "enqueue_bulk.rate")),
            # BullMQ keeps whole milliseconds: 0 means under 1.
            "lat": "<1 / " + fmt(p99, 0) if p50 == 0 else pair(p50, p99),
            "rss": pair(mib(peer(s, "worker_c1.peak_rss_kib")), mib(peer(s, "worker_c64.peak_rss_kib")), 1),
        }))
    rows = [
        ("c1", "one worker, concurrency 1, no-op jobs/s"),
        ("c64", "one worker, concurrency 64, no-op jobs/s"),
        ("cpu", "Redis CPU per job worked, c1 / c64 (µs)"),
        ("one", "enqueue one by one, jobs/s"),
        ("bulk", "bulk enqueue, jobs/s"),
        ("lat", "enqueue → start, idle, p50 / p99 ms"),
        ("rss", "worker peak RSS c1 / c64, MiB"),
    ]
    print("| figure | " + " | ".join(title for title, _ in columns) + " |")
    print("|---|" + "---|" * len(columns))
    for key, label in rows:
        print(f"| {label} | " + " | ".join(cells[key] for _, cells in columns) + " |")
    print()

    own = [(t, d) for t, d in (("Redis", redis), ("SQLite", sqlite)) if d is not None]
    if own:
        print("| rqrs's other figures | " + " | ".join(t for t, _ in own) + " |")
        print("|---|" + "---|" * len(own))
        def row(label, cell):
            print(f"| {label} | " + " | ".join(cell(d) for _, d in own) + " |")
        for c in (8, 256):
            row(f"one worker, concurrency {c}, jobs/s", lambda d, c=c: fmt(median(d, f"worker_c{c}")))
        row("Redis CPU per job, c8 / c256 (µs)", lambda d: pair(median(d, "worker_c8_redis_cpu_us"), median(d, "worker_c256_redis_cpu_us"), 0))
        row("two worker processes, concurrency 64 each, jobs/s", lambda d: fmt(median(d, "workers2_c64")))
        row("10 ms jobs, concurrency 64, jobs/s (at most 6,400)", lambda d: fmt(median(d, "sleep10ms_c64")))
        row("process isolation, concurrency 1 / 4, jobs/s", lambda d: pair(median(d, "isolated_c1"), median(d, "isolated_c4"), 0))
        row("Redis commands per job worked, c1 / c64", lambda d: pair(median(d, "commands/per_job/work_c1"), median(d, "commands/per_job/work_c64"), 1))
        row("Redis commands per enqueue", lambda d: fmt(median(d, "commands/enqueue_one"), 1))
        row("latency under load (half the c64 rate, steady), start p50 / p99 ms",
            lambda d: pair(d.get("latency_under_load", {}).get("start_p50_ms"), d.get("latency_under_load", {}).get("start_p99_ms")))
        row("idle worker RSS, MiB / CPU %", lambda d: pair(mib(d.get("latency", {}).get("idle_worker_rss_kib")), d.get("latency", {}).get("idle_worker_cpu_percent"), 1))
        row("burst worker start-up to exit, empty queue, ms", lambda d: fmt(median(d, "startup_ms"), 1))
        row("store bytes per queued / finished job", lambda d: pair(d.get("store_bytes_per_queued_job"), d.get("store_bytes_per_finished_job"), 0))
        def backlog(d):
            b = d.get("backlog", {})
            if "worker_c64" not in b:
                return b.get("note", "—")
            empty = median(d, "worker_c64")
            ratio = f", {b['worker_c64'] / empty:.2f} of the empty case" if empty else ""
            return f"{fmt(b['worker_c64'])} jobs/s ({fmt(b['waiting'])} waiting, {fmt(b['finished'])} finished{ratio})"
        row("big backlog, concurrency 64", backlog)
        print()
    if peers is not None:
        meta = peers.get("meta", {})
        print(f"Peers: SCALE={meta.get('scale')} REPS={meta.get('reps')}; the harness's own tables: "
              f"{runs[-1][:-5]}.md. Its rqrs column times the same worker binary its own way "
              f"(start-up included, jobs filled by Python RQ).")
        if peers.get("errors"):
            print(f"Peers that failed: {', '.join(str(e.get('peer', e)) if isinstance(e, dict) else str(e) for e in peers['errors'])}")

    if a.plot:
        plot(a.plot, redis, sqlite, summary)


def plot(path, redis, sqlite, summary):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    for title, d in (("rqrs (Redis)", redis), ("rqrs (SQLite)", sqlite)):
        points = [(c, median(d, f"worker_c{c}")) for c in (1, 8, 64, 256)]
        points = [(c, v) for c, v in points if v]
        if points:
            ax.plot(*zip(*points), marker="o", linewidth=2, label=title)
    for name, s in summary.items():
        points = [(c, peer(s, f"worker_c{c}.rate")) for c in (1, 64)]
        points = [(c, v) for c, v in points if v]
        if points and name != "rqrs":
            ax.plot(*zip(*points), marker="s", linestyle="--", label=name)
    ax.set_xscale("log", base=2)
    ax.set_xticks([1, 8, 64, 256], labels=["1", "8", "64", "256"])
    ax.set_xlabel("concurrency of one worker process")
    ax.set_ylabel("no-op jobs/s (start-up included)")
    ax.set_title("Throughput against concurrency, one worker, same machine and run")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)


if __name__ == "__main__":
    main()
