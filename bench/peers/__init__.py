"""``python -m bench.peers``: jobs beside its peers, on the same workloads in one run.

Each system (jobs, django-tasks-db, Procrastinate, delayed_job) is driven
through a small driver process in its own environment and its own throwaway
PostgreSQL database; every job does one autocommitted INSERT into the scratch
table ``bench_done``, whose ``clock_timestamp()`` column times the drain and
the pickup the same way for every system. Only stdlib modules are imported
here and in ``driver``, so the peers' virtualenv can run the drivers.
"""
