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
