"""``python -m bench``: the benchmark suite, on SQLite and/or PostgreSQL.

For each database: create a throwaway database, run the sections in a child
process (bench.runner) against it, drop the database, then print one
markdown table per database with issue 5's targets and ✓/✗.
"""

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .databases import DEFAULT_POSTGRES_URL, bench_database
from .processes import ROOT, bench_env
from .report import header, table
from .runner import SECTIONS
from .stats import Figure

#: Longest one database's sections may take before the run is stopped.
DEFAULT_TIMEOUT = 45 * 60


def _sections(value: str) -> list[int]:
    numbers = sorted({int(n) for n in value.split(",") if n.strip()})
    if not numbers or any(n not in SECTIONS for n in numbers):
        raise argparse.ArgumentTypeError(f"sections are 1 to {len(SECTIONS)}, not {value!r}")
    return numbers


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark jobs and the signup site on throwaway databases. Sections: "
        + "; ".join(f"{n} {name}" for n, name in SECTIONS.items()),
    )
    parser.add_argument("--database", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument(
        "--only",
        type=_sections,
        default=list(SECTIONS),
        metavar="N[,M]",
        help="run only these sections (e.g. 1,2)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="small counts and one run: a smoke test, not figures"
    )
    parser.add_argument("--runs", type=int, help="runs per figure (default 3; --quick 1)")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("BENCH_POSTGRES_URL", DEFAULT_POSTGRES_URL),
        help="local server and a database to connect to while creating ours",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        help="seconds one database's sections may take (default 45 min)",
    )
    args = parser.parse_args(argv)
    if args.runs is None:
        args.runs = 1 if args.quick else 3
    return args


def _stop(child: subprocess.Popen) -> None:
    """SIGTERM the runner (it stops its own processes), then SIGKILL its whole group."""
    if child.poll() is None:
        child.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=45)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.pid, signal.SIGKILL)
    child.wait()


def run_engine(
    engine: str, args: argparse.Namespace, workdir: Path
) -> tuple[list[Figure], str, str]:
    """Run the sections on a fresh database of ``engine``; (figures, server version, error)."""
    out = workdir / f"{engine}.json"
    print(f"== {engine}: sections {','.join(map(str, args.only))}", file=sys.stderr, flush=True)
    with bench_database(engine, workdir, args.postgres_url) as url:
        command = [
            sys.executable,
            "-m",
            "bench.runner",
            "--out",
            str(out),
            "--sections",
            ",".join(map(str, args.only)),
            "--runs",
            str(args.runs),
            "--static-root",
            str(workdir / "static"),
        ]
        if args.quick:
            command.append("--quick")
        # Its own session: Ctrl-C reaches only us, and we stop it in order.
        child = subprocess.Popen(
            command, cwd=ROOT, env=bench_env(url), stdin=subprocess.DEVNULL, start_new_session=True
        )
        error = ""
        try:
            status = child.wait(timeout=args.timeout)
            if status:
                error = f"bench.runner exited with status {status}"
        except subprocess.TimeoutExpired:
            error = f"stopped after the {args.timeout:g}s timeout"
        finally:
            _stop(child)
    figures, server = [], ""
    if out.exists():
        data = json.loads(out.read_text())
        figures = [Figure.from_json(f) for f in data["figures"]]
        server = data["server"]
        problems = list(data["errors"])
        # A failed section makes the runner exit 1; no need to say that twice.
        if error and not (problems and error.startswith("bench.runner exited")):
            problems.append(error)
        error = "; ".join(problems)
    return figures, server, error


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    engines = ["sqlite", "postgres"] if args.database == "both" else [args.database]
    started = time.monotonic()
    intro = header(args.runs, args.quick)
    outputs, failed = [], False
    with tempfile.TemporaryDirectory(prefix="jobs-bench-") as workdir:
        for engine in engines:
            figures, server, error = run_engine(engine, args, Path(workdir))
            output = table(engine, figures, server) if figures else f"### {engine}\n\n(no figures)"
            if error:
                failed = True
                output += f"\n\n**{engine}: incomplete: {error}** (see the log above)"
            outputs.append(output)
    print(intro, *outputs, sep="\n\n")
    print(f"\n(bench took {time.monotonic() - started:.0f}s)")
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
