"""``python -m bench.peers``: jobs and its peers, same workloads, same run, ratios.

Per round, for each system in turn (the order rotates, so no system always
runs first): the INSERT ceiling on its database (measured just before it, so
a share of the ceiling compares figures taken under the same load), then
enqueue COUNT jobs one by one, drain them with 1 worker process, enqueue again
and drain with 2, then the pickup latency of an idle worker. Figures are
medians over the rounds; only the ratios between systems of one run are meant
to be compared or quoted.
"""

import argparse
import contextlib
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from ..databases import DEFAULT_POSTGRES_URL
from ..report import number
from .measure import SystemBench, insert_ceiling, pickup_p50, scratch_database
from .systems import PEERS, System, available


def progress(message: str) -> None:
    """One line on stderr (bench.context's twin, which needs Django set up)."""
    print(f"  [{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


METRICS = {
    # key: (label, unit, higher is better)
    "enqueue": ("enqueue one by one (a transaction each)", "jobs/s", True),
    "drain1": ("drain, 1 process", "jobs/s", True),
    "drain2": ("drain, 2 processes", "jobs/s", True),
    "pickup": ("pickup latency p50, idle worker", "ms", False),
    "cpu": ("CPU per drained job, worker + database (1 process)", "ms", False),
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.peers", description=__doc__)
    parser.add_argument("--jobs", type=int, help="jobs per enqueue and drain (default 5,000)")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 3)")
    parser.add_argument("--pickups", type=int, help="pickups per round (default 20)")
    parser.add_argument(
        "--peers",
        default=",".join(PEERS),
        help=f"comma-separated, of {', '.join(PEERS)} (default all; missing ones are skipped)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="500 jobs, 1 round, 5 pickups: a smoke run"
    )
    parser.add_argument(
        "--postgres-url", default=os.environ.get("BENCH_POSTGRES_URL", DEFAULT_POSTGRES_URL)
    )
    args = parser.parse_args(argv)
    args.jobs = args.jobs or (500 if args.quick else 5_000)
    args.rounds = args.rounds or (1 if args.quick else 3)
    args.pickups = args.pickups or (5 if args.quick else 20)
    unknown = set(args.peers.split(",")) - set(PEERS) - {""}
    if unknown:
        parser.error(f"unknown peers {sorted(unknown)}; choose from {list(PEERS)}")
    return args


def one_round(bench: SystemBench, args: argparse.Namespace, figures: dict) -> str:
    """One round of ``bench``'s system into ``figures``; how the ceiling was measured."""
    title = bench.system.title
    ceiling, how = insert_ceiling(bench.url, args.jobs)
    figures["ceiling"].append(ceiling)
    figures["enqueue"].append(bench.enqueue(args.jobs))
    drain = bench.drain(args.jobs, 1)
    figures["drain1"].append(drain.rate)
    figures["cpu"].append(drain.cpu_ms)
    bench.enqueue(args.jobs)
    figures["drain2"].append(bench.drain(args.jobs, 2).rate)
    figures["pickup"].append(pickup_p50(bench.pickup(args.pickups)))
    progress(
        f"{title}: enqueue {figures['enqueue'][-1]:,.0f}/s, drain {figures['drain1'][-1]:,.0f}/s"
        f" and {figures['drain2'][-1]:,.0f}/s, pickup p50 {figures['pickup'][-1]:.1f} ms,"
        f" CPU {figures['cpu'][-1]:.2f} ms/job; INSERT ceiling {ceiling:,.0f}/s"
    )
    return how


def report(
    systems: list[System],
    medians: dict[str, dict[str, float]],
    how: str,
    skipped: list[str],
    args: argparse.Namespace,
) -> str:
    ours, peers = systems[0], systems[1:]
    cpus = os.cpu_count() or 1
    head = "| measure | " + " | ".join(s.title for s in systems) + " |"
    lines = [
        f"## jobs and its peers, same run ({args.jobs:,} jobs each doing one INSERT; "
        f"medians of {args.rounds} interleaved round(s); PostgreSQL)",
        "",
        head,
        "|---|" + "---:|" * len(systems),
    ]
    for key, (label, unit, _) in METRICS.items():
        cells = [number(medians[s.key][key], unit) for s in systems]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    cells = [number(medians[s.key]["ceiling"], "jobs/s") for s in systems]
    lines.append("| INSERT ceiling, measured just before [1] | " + " | ".join(cells) + " |")
    for key in ("enqueue", "drain1", "drain2"):
        cells = [f"{medians[s.key][key] / medians[s.key]['ceiling']:.0%}" for s in systems]
        lines.append(f"| {METRICS[key][0]} ÷ INSERT ceiling | " + " | ".join(cells) + " |")
    cells = [
        f"{medians[s.key]['drain1'] * medians[s.key]['cpu'] / 1000 / cpus:.0%}" for s in systems
    ]
    lines.append(f"| drain, 1 process: CPU used of {cpus} CPUs | " + " | ".join(cells) + " |")
    if peers:
        lines += [
            "",
            f"How many times better {ours.title} did than each peer, same run "
            "(>1: jobs ahead; throughput ours ÷ theirs, latency and CPU theirs ÷ ours):",
            "",
            "| measure | " + " | ".join(f"vs {p.title}" for p in peers) + " |",
            "|---|" + "---:|" * len(peers),
        ]
        for key, (label, _, higher_better) in METRICS.items():
            mine = medians[ours.key][key]
            theirs = [medians[p.key][key] for p in peers]
            cells = [f"{(mine / t if higher_better else t / mine):.2f}x" for t in theirs]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"[1] single-row INSERT commits/s from one client over TCP ({how}), on the system's "
        f"own database right before its round. CPU: {cpus} CPUs shared by workers, database "
        "and the bench.",
    ]
    lines += [f"- {line}" for line in skipped]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    systems, skipped = available([p for p in args.peers.split(",") if p])
    for line in skipped:
        progress(line)
    figures: dict[str, dict[str, list[float]]] = {s.key: defaultdict(list) for s in systems}
    how = ""
    # The drivers' logs, kept when the run fails.
    logs = tempfile.mkdtemp(prefix="jobs-bench-peers-")
    with contextlib.ExitStack() as stack:
        benches = []
        for system in systems:
            url, name = stack.enter_context(scratch_database(args.postgres_url, system.key))
            bench = SystemBench(system, url, name, Path(logs))
            progress(f"{system.title}: setting up {name}")
            bench.setup()
            benches.append(bench)
        try:
            for round_number in range(args.rounds):
                # Rotate, so every system runs first once in three rounds.
                shift = round_number % len(benches)
                order = benches[shift:] + benches[:shift]
                progress(f"round {round_number + 1} of {args.rounds}")
                for bench in order:
                    how = one_round(bench, args, figures[bench.system.key])
        except Exception as exc:
            print(f"bench.peers failed: {exc} (the drivers' logs: {logs})", file=sys.stderr)
            raise
    shutil.rmtree(logs)
    medians = {
        key: {metric: statistics.median(values) for metric, values in by_metric.items()}
        for key, by_metric in figures.items()
    }
    print(report(systems, medians, how, skipped, args))
    print(f"\n(bench.peers took {time.monotonic() - started:.0f}s)")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
