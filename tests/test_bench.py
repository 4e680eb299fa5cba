"""The benchmark suite still runs: a --quick smoke run of two sections on SQLite."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_quick_bench_prints_a_table():
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--database", "sqlite", "--only", "1,2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    table = result.stdout
    assert "| § | measure | median |" in table
    assert "enqueue_many of 10,000" in table
    assert "drain 1,000 no-op jobs, 2 processes" in table
    assert "each job ran exactly once" in table


def _peers_missing() -> str:
    """Why the peers smoke run cannot run here, or ''."""
    from bench.databases import DEFAULT_POSTGRES_URL
    from bench.peers.systems import PEERS

    reason = PEERS["procrastinate"][1]()
    if reason:
        return reason
    try:
        import psycopg

        psycopg.connect(DEFAULT_POSTGRES_URL, connect_timeout=2).close()
    except Exception as exc:
        return f"no PostgreSQL at {DEFAULT_POSTGRES_URL}: {exc}"
    return ""


@pytest.mark.slow
def test_peers_bench_prints_ratios():
    """`python -m bench.peers` at a tiny size, against Procrastinate (about 20 s)."""
    missing = _peers_missing()
    if missing:
        pytest.skip(f"peers bench: {missing}")
    tiny = ["--jobs", "50", "--rounds", "1", "--pickups", "2", "--peers", "procrastinate"]
    result = subprocess.run(
        [sys.executable, "-m", "bench.peers", *tiny],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    table = result.stdout
    assert "| measure | jobs | Procrastinate |" in table
    assert "| drain, 2 processes ÷ INSERT ceiling |" in table
    assert "| measure | vs Procrastinate |" in table
    assert "single-row INSERT commits/s from one client over TCP" in table
