"""One system's measurements on its own database: enqueue, drain, pickup, CPU.

Times come from the scratch table: each job's INSERT stamps clock_timestamp(),
so a drain's rate is the jobs between the first and the last INSERT over that
time (worker start-up left out, the same for every system), and a pickup is
the enqueue's commit to the job's INSERT. CPU per drained job is the workers'
CPU plus the CPU of the PostgreSQL backends serving this database, both read
from /proc over the same window.
"""

import json
import os
import random
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg

from ..processes import ROOT
from ..stats import percentile
from .systems import System

_TICK = os.sysconf("SC_CLK_TCK")
SAMPLE_EVERY = 0.05
SCRATCH_SQL = """
CREATE TABLE IF NOT EXISTS bench_done (
  n integer NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE TABLE IF NOT EXISTS bench_ceiling (n integer NOT NULL);
CREATE OR REPLACE FUNCTION bench_pickup_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('bench_pickup', NEW.n || ' ' || extract(epoch FROM NEW.at));
  RETURN NULL;
END $$;
"""


class PeerBenchError(RuntimeError):
    """A driver failed or a drain lost or duplicated jobs."""


@dataclass
class Drain:
    rate: float  # jobs/s
    cpu_ms: float  # worker + database CPU per job


def _cpu_seconds(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime + stime


def _backend_pids(database: str) -> list[int]:
    """PostgreSQL backends serving ``database``: their process title names it.

    ``postgres: [cluster_name:] user database host state``; the bench's
    database names are unique, so any word of the title may match.
    """
    pids = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            title = Path(entry.path, "cmdline").read_bytes()
        except OSError:
            continue
        words = title.replace(b"\0", b" ").split()
        if words[:1] == [b"postgres:"] and database.encode() in words[1:5]:
            pids.append(int(entry.name))
    return pids


class CpuSampler:
    """Samples the CPU of the workers and of ``database``'s backends every 50 ms.

    CPU in a window is, per process, its reading just after the window minus
    its reading just before it (0 for a process born later): start-up before
    the first job is left out (give or take a sample), and so is a worker's
    shut-down after the last job; a backend's last 50 ms before exit may be
    missed.
    """

    def __init__(self, database: str, workers: list[subprocess.Popen]):
        self.database = database
        self.workers = workers
        self.samples: dict[int, list[tuple[float, float]]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        now = time.time()
        # Not Popen.poll(): that would reap a worker before drain()'s wait4.
        pids = [w.pid for w in self.workers]
        for pid in pids + _backend_pids(self.database):
            cpu = _cpu_seconds(pid)
            if cpu is not None:
                self.samples.setdefault(pid, []).append((now, cpu))

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_EVERY):
            self._sample()

    def __enter__(self) -> "CpuSampler":
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def seconds_between(self, start: float, end: float, final: dict[int, float]) -> float:
        """CPU of every sampled process between the samples that bracket [start, end].

        A process born after ``start`` counts from 0; one gone before a sample
        after ``end`` counts to its ``final`` reading (a worker's rusage), or
        its last sample.
        """
        total = 0.0
        for pid, samples in self.samples.items():
            before = [cpu for at, cpu in samples if at <= start]
            after = [cpu for at, cpu in samples if at >= end]
            last = after[0] if after else final.get(pid, samples[-1][1])
            total += last - (before[-1] if before else 0.0)
        return total


class SystemBench:
    """Drives one system's driver processes against its database ``url``."""

    def __init__(self, system: System, url: str, database: str, logs: Path):
        self.system = system
        self.url = url
        self.database = database
        self.logs = logs

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTEST_"))}
        env.update(BENCH_DATABASE_URL=self.url, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
        env.pop("DATABASE_URL", None)
        return env

    def _log(self, name: str):
        return (self.logs / f"{self.system.key}-{name}.log").open("a")

    def run(self, *action: str, timeout: float = 600) -> str:
        with self._log(action[0]) as log:
            result = subprocess.run(
                self.system.argv(*action),
                cwd=ROOT,
                env=self._env(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                timeout=timeout,
            )
        if result.returncode:
            raise PeerBenchError(
                f"{self.system.title} {' '.join(action)} exited {result.returncode}; "
                f"see {self.logs / f'{self.system.key}-{action[0]}.log'}"
            )
        return result.stdout

    def start(self, *action: str, stdin=subprocess.DEVNULL, stdout=None) -> subprocess.Popen:
        log = self._log(action[0])
        return subprocess.Popen(
            self.system.argv(*action),
            cwd=ROOT,
            env=self._env(),
            stdin=stdin,
            stdout=stdout or log,
            stderr=log,
            text=True,
        )

    def _sql(self, query: str, params=()) -> list[tuple]:
        with psycopg.connect(self.url, autocommit=True) as connection:
            cursor = connection.execute(query, params)
            return cursor.fetchall() if cursor.description else []

    def setup(self) -> None:
        self._sql(SCRATCH_SQL)
        self.run("setup")

    def empty(self) -> None:
        self.run("reset")
        self._sql("TRUNCATE bench_done")

    def enqueue(self, count: int) -> float:
        """jobs/s enqueuing ``count`` jobs one by one, each its own transaction."""
        self.empty()
        seconds = json.loads(self.run("enqueue", str(count)).strip().splitlines()[-1])["seconds"]
        return count / seconds

    def drain(self, count: int, processes: int, timeout: float = 600) -> Drain:
        """Drain the ``count`` jobs already enqueued with ``processes`` workers."""
        workers = []
        final: dict[int, float] = {}
        with CpuSampler(self.database, workers) as sampler:
            workers.extend(self.start("workoff") for _ in range(processes))
            deadline = time.monotonic() + timeout
            for worker in workers:
                while True:
                    # wait4 (not wait): the worker's own CPU, to its last tick.
                    pid, status, usage = os.wait4(worker.pid, os.WNOHANG)
                    if pid:
                        worker.returncode = os.waitstatus_to_exitcode(status)
                        final[pid] = usage.ru_utime + usage.ru_stime
                        break
                    if time.monotonic() > deadline:
                        for w in workers:
                            w.kill()
                        raise PeerBenchError(f"{self.system.title} workoff took over {timeout}s")
                    time.sleep(0.02)
        failed = [w.returncode for w in workers if w.returncode]
        if failed:
            raise PeerBenchError(f"{self.system.title} workoff exited {failed}")
        ((rows, distinct, first, last),) = self._sql(
            "SELECT count(*), count(DISTINCT n), extract(epoch FROM min(at)),"
            " extract(epoch FROM max(at)) FROM bench_done"
        )
        if not rows == distinct == count:
            raise PeerBenchError(
                f"{self.system.title}: expected {count} jobs each run once; "
                f"{rows} rows, {distinct} distinct"
            )
        cpu = sampler.seconds_between(float(first), float(last), final)
        return Drain(rate=(count - 1) / float(last - first), cpu_ms=cpu / count * 1000)

    def pickup(self, count: int, warm_up: int = 5) -> list[float]:
        """Latencies (ms) from an enqueue's commit to its job's INSERT, idle worker.

        ``warm_up`` jobs go first, unmeasured: more than jobs' 4 threads, so
        no measured job pays for a thread's first database connection.
        """
        self.empty()
        self._sql(
            "CREATE TRIGGER bench_pickup AFTER INSERT ON bench_done"
            " FOR EACH ROW EXECUTE FUNCTION bench_pickup_notify()"
        )
        worker = self.start("work")
        enqueuer = self.start("enqueue-stdin", stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        latencies = []
        try:
            with psycopg.connect(self.url, autocommit=True) as listener:
                listener.execute("LISTEN bench_pickup")
                if enqueuer.stdout.readline().strip() != "ready":
                    raise PeerBenchError(f"{self.system.title} enqueue-stdin did not start")
                for number in range(-warm_up, count):
                    time.sleep(random.uniform(0.02, self.system.poll_interval))
                    enqueuer.stdin.write(f"{number}\n")
                    enqueuer.stdin.flush()
                    committed = float(enqueuer.stdout.readline())
                    started = self._wait_notify(listener, number, worker)
                    if number >= 0:
                        latencies.append((started - committed) * 1000)
        finally:
            enqueuer.stdin.close()
            for process in (enqueuer, worker):
                process.terminate()
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            self._sql("DROP TRIGGER IF EXISTS bench_pickup ON bench_done")
        return latencies

    def _wait_notify(self, listener, number: int, worker, timeout: float = 60) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if worker.poll() is not None:
                raise PeerBenchError(f"{self.system.title} worker exited {worker.returncode}")
            for notify in listener.notifies(timeout=0.5, stop_after=1):
                n, at = notify.payload.split()
                if int(n) == number:
                    return float(at)
        raise PeerBenchError(f"{self.system.title}: job {number} not picked up in {timeout}s")


def insert_ceiling(url: str, count: int) -> tuple[float, str]:
    """Single-row INSERT commits per second from one client over TCP; (rate, how)."""
    pgbench = shutil.which("pgbench") or next(
        (str(p) for p in sorted(Path("/usr/lib/postgresql").glob("*/bin/pgbench"))), None
    )
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("TRUNCATE bench_ceiling")
    if pgbench:
        script = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-ceiling-{os.getpid()}.sql"
        script.write_text("INSERT INTO bench_ceiling (n) VALUES (1);\n")
        try:
            out = subprocess.run(
                [pgbench, "-n", "-c", "1", "-t", str(count), "-f", str(script), url],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        finally:
            script.unlink(missing_ok=True)
        for line in out.splitlines():
            if line.startswith("tps = "):
                return float(line.split()[2]), "pgbench"
        raise PeerBenchError(f"pgbench printed no tps:\n{out}")
    with psycopg.connect(url, autocommit=True) as connection:
        started = time.perf_counter()
        for n in range(count):
            connection.execute("INSERT INTO bench_ceiling (n) VALUES (%s)", [n])
        return count / (time.perf_counter() - started), "psycopg loop"


def _drop_abandoned(admin, key: str) -> None:
    """Drop ``bench_<key>_<pid>`` databases whose run is dead (killed, or the server restarted)."""
    from psycopg import sql

    pattern = re.compile(rf"^bench_{re.escape(key)}_(\d+)$")
    for (name,) in admin.execute("SELECT datname FROM pg_database").fetchall():
        match = pattern.match(name)
        if match and not Path(f"/proc/{match.group(1)}").exists():
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@contextmanager
def scratch_database(server_url: str, key: str) -> Iterator[tuple[str, str]]:
    """A fresh ``bench_<key>_<pid>`` database; (url, name); dropped afterwards."""
    from urllib.parse import urlsplit, urlunsplit

    from psycopg import sql

    name = f"bench_{key}_{os.getpid()}"
    drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
    with psycopg.connect(server_url, autocommit=True) as admin:
        _drop_abandoned(admin, key)
        admin.execute(drop)
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield urlunsplit(urlsplit(server_url)._replace(path=f"/{name}")), name
    finally:
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(drop)


def pickup_p50(latencies: list[float]) -> float:
    return percentile(latencies, 50)
