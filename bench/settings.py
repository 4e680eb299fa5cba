"""Settings for every bench process: the site's, plus what the bench needs.

DATABASE_URL (set by bench.databases) picks the throwaway database; the
site's settings read it, with the same SQLite OPTIONS (WAL + IMMEDIATE).
"""

import os

from signupdemo.settings import *  # noqa: F403
from signupdemo.settings import JOBS

# Workers may call bench.targets (the bench is not an installed app).
JOBS = {**JOBS, "ALLOWED_MODULES": ["bench"]}

# gunicorn serves the site with DEBUG off, so the manifest storage needs a
# collectstatic output: the bench collects into its own temporary directory.
if os.environ.get("BENCH_STATIC_ROOT"):
    STATIC_ROOT = os.environ["BENCH_STATIC_ROOT"]
