"""The child process: run the chosen sections against one database, write JSON.

``python -m bench.runner --out FILE --sections 1,2 [--quick] [--runs N]``, with
DATABASE_URL naming a fresh database and DJANGO_SETTINGS_MODULE=bench.settings
(bench.__main__ sets both). Results go to FILE; progress goes to stderr.
"""

import argparse
import json
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

SECTIONS = {
    1: "enqueue",
    2: "drain (no-op jobs)",
    3: "I/O-bound drain",
    4: "pickup latency",
    5: "big table",
    6: "signup latency",
    7: "unique and concurrency keys",
}


def _section_runner(number: int):
    from . import bigtable, drain, enqueue, keys, pickup, signup

    return {
        1: enqueue.run,
        2: drain.run_noop,
        3: drain.run_io,
        4: pickup.run,
        5: bigtable.run,
        6: signup.run,
        7: keys.run,
    }[number]


def _server_version(connection) -> str:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SHOW server_version")
            return cursor.fetchone()[0].split()[0]
    import sqlite3

    return sqlite3.sqlite_version


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.runner")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--sections", required=True)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--static-root", type=Path)
    args = parser.parse_args(argv)

    from .processes import install_termination_handler

    install_termination_handler()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    if args.static_root:
        os.environ["BENCH_STATIC_ROOT"] = str(args.static_root)
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import close_old_connections, connection

    from .context import BenchContext, progress

    call_command("migrate", interactive=False, verbosity=0)
    engine = "postgres" if connection.vendor == "postgresql" else "sqlite"
    server = _server_version(connection)
    with tempfile.TemporaryDirectory(prefix=f"jobs-bench-{engine}-") as workdir:
        ctx = BenchContext(
            engine=engine,
            database_url=os.environ["DATABASE_URL"],
            workdir=Path(workdir),
            static_root=args.static_root or Path(workdir) / "static",
            runs=args.runs,
            quick=args.quick,
        )
        results, errors = [], []
        for number in (int(n) for n in args.sections.split(",")):
            progress(f"{engine}: section {number}, {SECTIONS[number]}")
            started = time.monotonic()
            try:
                figures = _section_runner(number)(ctx)
            except Exception as exc:
                # One broken section must not cost the others their figures.
                traceback.print_exc()
                errors.append(f"section {number} ({SECTIONS[number]}) failed: {exc}")
                close_old_connections()
            else:
                results.extend(f.to_json() for f in figures)
            progress(f"{engine}: section {number} took {time.monotonic() - started:.0f}s")
            # Written after every section, so a crash keeps earlier figures.
            args.out.write_text(
                json.dumps(
                    {"engine": engine, "server": server, "figures": results, "errors": errors}
                )
            )
    connection.close()
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
