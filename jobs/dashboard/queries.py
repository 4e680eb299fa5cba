"""The dashboard's reads: a fixed number of queries per page, never one per row.

List pages never COUNT(*): they fetch one row more than they show to know
whether there is a next page, and page by keyset (the last row's sort key),
so page 1000 costs what page 1 does. Each status is listed in an order its
partial index on ``jobs_job`` already has.
"""

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.core.exceptions import BadRequest
from django.db import connection
from django.db.models import Count, F, Q, TextField
from django.db.models.functions import Cast, Left, TruncMinute
from django.utils import timezone

from ..conf import jobs_settings
from ..models import Job, PausedQueue, Worker
from . import arguments

PAGE_SIZE = 50
CHART_MINUTES = 60
#: Columns a list row shows; the big JSON ones stay in the database.
LIST_FIELDS = (
    "id", "name", "queue", "priority", "status", "attempts", "max_attempts", "run_at",
    "locked_at", "locked_by", "last_error", "failed_at", "finished_at", "created_at",
    "concurrency_key", "concurrency_limit", "cancel_requested_at",
)  # fmt: skip


# -- overview ---------------------------------------------------------------------


#: The most rows any one overview count reads; see _OVERVIEW_COUNTS_SQL.
COUNT_CAP = 1000
#: The overview's counts that stop at COUNT_CAP rows; the others are exact.
CAPPED_COUNTS = ("scheduled", "blocked", "succeeded", "failed", "cancelled")

# The overview's counts in one statement whose cost does not grow with history.
#
# Due (ready) and running jobs are live work, few by nature (a big backlog is
# itself the news): exact counts, each a range scan of its status's partial
# index. A scheduled job counts as scheduled until a worker promotes it.
# Scheduled, succeeded and failed rows pile up without bound, so each is
# counted over at most COUNT_CAP + 1 rows, read in its partial index's order
# (soonest run_at, newest finished_at, newest failed_at). Below the cap the
# count is exact; at the cap every figure is a lower bound, shown as "n+".
# The cap keeps the cost fixed: each row read is an index entry plus a heap
# visit for its queue, about 0.5 ms per thousand on PostgreSQL. Past a
# thousand failed jobs the exact figure matters less than that there are many;
# for scale, PostgreSQL adds its planner's estimate of each finished status
# (the partial index's reltuples, kept by autovacuum's ANALYZE), shown "≈".
_OVERVIEW_COUNTS_SQL = """
SELECT 'due', queue, COUNT(*), MIN(run_at) FROM {job} WHERE status = 'ready' GROUP BY queue
UNION ALL
SELECT 'running', queue, COUNT(*), NULL FROM {job} WHERE status = 'running' GROUP BY queue
UNION ALL
SELECT 'scheduled', queue, COUNT(*), NULL FROM (
       SELECT queue FROM {job} WHERE status = 'scheduled'
        ORDER BY run_at, id LIMIT %(rows)s) AS soonest GROUP BY queue
UNION ALL
SELECT 'succeeded', queue, COUNT(*), NULL FROM (
       SELECT queue FROM {job} WHERE status = 'succeeded'
        ORDER BY finished_at DESC LIMIT %(rows)s) AS newest GROUP BY queue
UNION ALL
SELECT 'failed', queue, COUNT(*), NULL FROM (
       SELECT queue FROM {job} WHERE status = 'failed'
        ORDER BY failed_at DESC LIMIT %(rows)s) AS newest GROUP BY queue
UNION ALL
SELECT 'blocked', queue, COUNT(*), NULL FROM (
       SELECT queue FROM {job} WHERE status = 'blocked'
        ORDER BY concurrency_key, priority DESC, run_at, id LIMIT %(rows)s) AS first GROUP BY queue
UNION ALL
SELECT 'cancelled', queue, COUNT(*), NULL FROM (
       SELECT queue FROM {job} WHERE status = 'cancelled'
        ORDER BY finished_at DESC LIMIT %(rows)s) AS newest GROUP BY queue
"""
_ESTIMATES_SQL = """
UNION ALL
SELECT 'estimate', 'succeeded', reltuples::bigint, NULL FROM pg_class
 WHERE oid = to_regclass('jobs_job_succeeded_idx') AND reltuples >= 0
UNION ALL
SELECT 'estimate', 'failed', reltuples::bigint, NULL FROM pg_class
 WHERE oid = to_regclass('jobs_job_failed_idx') AND reltuples >= 0
"""


@dataclass
class QueueStats:
    """One queue's row on the overview."""

    name: str
    due: int = 0
    scheduled: int = 0
    blocked: int = 0
    running: int = 0
    succeeded: int = 0
    failed: int = 0
    cancelled: int = 0
    #: Which of CAPPED_COUNTS reached the cap: those figures are lower bounds.
    capped: frozenset[str] = frozenset()
    oldest_due_at: datetime | None = None
    paused_at: datetime | None = None
    succeeded_per_minute: list[int] = field(default_factory=lambda: [0] * CHART_MINUTES)
    failed_per_minute: list[int] = field(default_factory=lambda: [0] * CHART_MINUTES)
    now: datetime | None = None

    @property
    def ready(self) -> int:
        return self.due + self.scheduled

    @property
    def paused(self) -> bool:
        return self.paused_at is not None

    def _shown(self, name: str) -> str:
        n = getattr(self, name)
        return f"{n}+" if name in self.capped else str(n)

    @property
    def scheduled_display(self) -> str:
        return self._shown("scheduled")

    @property
    def blocked_display(self) -> str:
        return self._shown("blocked")

    @property
    def succeeded_display(self) -> str:
        return self._shown("succeeded")

    @property
    def cancelled_display(self) -> str:
        return self._shown("cancelled")

    @property
    def failed_display(self) -> str:
        return self._shown("failed")

    @property
    def latency(self) -> timedelta | None:
        """How long the oldest due job has waited (zero or more)."""
        if self.oldest_due_at is None or self.now is None:
            return None
        return max(self.now - self.oldest_due_at, timedelta(0))

    @property
    def latency_display(self) -> str:
        return duration(self.latency) if self.latency is not None else "-"

    @property
    def finished_last_hour(self) -> int:
        return sum(self.succeeded_per_minute) + sum(self.failed_per_minute)

    @property
    def succeeded_last_hour(self) -> int:
        return sum(self.succeeded_per_minute)

    @property
    def failed_last_hour(self) -> int:
        return sum(self.failed_per_minute)

    @property
    def chart(self) -> "BarChart":
        return BarChart.build(self.succeeded_per_minute, self.failed_per_minute, self.now)

    def as_json(self) -> dict:
        return {
            "queue": self.name,
            "paused": self.paused,
            "counts": {
                "due": self.due,
                "scheduled": self.scheduled,
                "blocked": self.blocked,
                "running": self.running,
                "succeeded": self.succeeded,
                "failed": self.failed,
                "cancelled": self.cancelled,
            },
            # These counts stopped at COUNT_CAP rows: each is "at least".
            "capped": sorted(self.capped),
            "latency_seconds": (
                round(self.latency.total_seconds(), 3) if self.latency is not None else None
            ),
            "finished_last_hour": self.finished_last_hour,
            "failed_last_hour": self.failed_last_hour,
        }


@dataclass
class Overview:
    queues: list[QueueStats]
    total: QueueStats
    workers: int
    stale_workers: int
    now: datetime
    #: PostgreSQL's estimate of all succeeded and failed rows; empty elsewhere,
    #: or before the table has been analyzed.
    estimates: dict[str, int] = field(default_factory=dict)
    count_cap: int = field(default_factory=lambda: COUNT_CAP)

    def _estimate(self, status: str) -> str:
        """'≈ 900,000' (two figures) for a capped count PostgreSQL can estimate, else ''."""
        n = self.estimates.get(status)
        if n is None or status not in self.total.capped:
            return ""
        return f"≈ {round(n, 2 - len(str(n))) if n >= 100 else n:,}"

    @property
    def succeeded_estimate(self) -> str:
        return self._estimate("succeeded")

    @property
    def failed_estimate(self) -> str:
        return self._estimate("failed")


def overview(now: datetime | None = None) -> Overview:
    """Every queue's counts, latency and last hour, in five queries.

    No query reads more than the live rows, COUNT_CAP rows of history, and
    the chart's last hour, however long the table grows.
    """
    now = now or timezone.now()
    queues: dict[str, QueueStats] = {}
    counts, estimates = _overview_counts()
    capped = frozenset(
        kind for kind in CAPPED_COUNTS if sum(n.get(kind, 0) for n in counts.values()) > COUNT_CAP
    )
    for name, row in counts.items():
        queues[name] = QueueStats(name=name, now=now, capped=capped, **row)
    for paused in PausedQueue.objects.all():
        queues.setdefault(paused.queue, QueueStats(name=paused.queue, now=now, capped=capped))
        queues[paused.queue].paused_at = paused.paused_at
    for queue, status, index, n in _finished_by_minute(now):
        stats = queues.setdefault(queue, QueueStats(name=queue, now=now, capped=capped))
        per_minute = stats.failed_per_minute if status == "failed" else stats.succeeded_per_minute
        per_minute[index] += n

    stale_cutoff = now - timedelta(seconds=jobs_settings().HEARTBEAT_TIMEOUT)
    workers = Worker.objects.aggregate(
        live=Count("name", filter=Q(last_heartbeat_at__gte=stale_cutoff)),
        stale=Count("name", filter=Q(last_heartbeat_at__lt=stale_cutoff)),
    )
    ordered = sorted(queues.values(), key=lambda q: q.name)
    return Overview(
        queues=ordered,
        total=_total(ordered, now, capped),
        workers=workers["live"],
        stale_workers=workers["stale"],
        now=now,
        estimates=estimates,
    )


def _overview_counts() -> tuple[dict[str, dict], dict[str, int]]:
    """Per queue, its counts by kind (and the oldest due run_at); the estimates."""
    sql = _OVERVIEW_COUNTS_SQL
    if connection.vendor == "postgresql":
        sql += _ESTIMATES_SQL
    sql = sql.format(job=connection.ops.quote_name(Job._meta.db_table))
    params = {"rows": COUNT_CAP + 1}
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    counts: dict[str, dict] = {}
    estimates: dict[str, int] = {}
    for kind, queue, n, oldest_due_at in rows:
        if kind == "estimate":
            estimates[queue] = int(n)
            continue
        counts.setdefault(queue, {})[kind] = n
        if oldest_due_at is not None:
            if isinstance(oldest_due_at, str):  # SQLite's raw rows carry text
                oldest_due_at = connection.ops.convert_datetimefield_value(
                    oldest_due_at, None, connection
                )
            counts[queue]["oldest_due_at"] = oldest_due_at
    return counts, estimates


def _total(queues: list[QueueStats], now: datetime, capped: frozenset[str]) -> QueueStats:
    total = QueueStats(name="All queues", now=now, capped=capped)
    for q in queues:
        for name in ("due", "scheduled", "blocked", "running", "succeeded", "failed", "cancelled"):
            setattr(total, name, getattr(total, name) + getattr(q, name))
        if q.oldest_due_at and (not total.oldest_due_at or q.oldest_due_at < total.oldest_due_at):
            total.oldest_due_at = q.oldest_due_at
        for i in range(CHART_MINUTES):
            total.succeeded_per_minute[i] += q.succeeded_per_minute[i]
            total.failed_per_minute[i] += q.failed_per_minute[i]
    for name in capped:
        # COUNT_CAP + 1 rows were read to tell "exactly the cap" from "more".
        setattr(total, name, COUNT_CAP)
    return total


def chart_start(now: datetime) -> datetime:
    """The first minute of the chart: the current minute is its last bar."""
    return now.replace(second=0, microsecond=0) - timedelta(minutes=CHART_MINUTES - 1)


def _finished_by_minute(now: datetime):
    """(queue, status, minute index, count) for jobs finished in the chart's hour.

    Two grouped queries, each on its status's partial index (finished_at for
    succeeded jobs, failed_at for failed ones).
    """
    start = chart_start(now)
    for status, column in ((Job.Status.SUCCEEDED, "finished_at"), (Job.Status.FAILED, "failed_at")):
        rows = (
            Job.objects.filter(status=status, **{f"{column}__gte": start})
            .order_by()
            .annotate(minute=TruncMinute(column))
            .values("queue", "minute")
            .annotate(n=Count("id"))
        )
        for row in rows:
            index = int((row["minute"] - start).total_seconds() // 60)
            if 0 <= index < CHART_MINUTES:
                yield row["queue"], status, index, row["n"]


# -- a small SVG bar chart ----------------------------------------------------------


@dataclass(frozen=True)
class Bar:
    x: float
    succeeded_y: float
    succeeded_height: float
    failed_y: float
    failed_height: float
    label: str


@dataclass(frozen=True)
class BarChart:
    """Geometry for a stacked bar chart of jobs finished per minute."""

    bars: tuple[Bar, ...]
    width: int
    height: int
    bar_width: float
    peak: int
    total: int
    failed: int
    #: The value of the top of the chart: the peak rounded up to 1, 2 or 5
    #: times a power of ten, so that the scale reads at a glance (at least 1,
    #: so that an empty chart still has a scale).
    scale_max: int = 1
    #: The first and last minutes shown, for the time axis.
    start: datetime | None = None
    end: datetime | None = None

    @property
    def scale_mid(self) -> str:
        half = self.scale_max / 2
        return f"{half:g}"

    @property
    def mid(self) -> datetime | None:
        return self.start + (self.end - self.start) / 2 if self.start and self.end else None

    @staticmethod
    def nice_ceiling(n: int) -> int:
        """The smallest of 1, 2, 5, 10, 20, 50, ... at least ``n``."""
        step = 1
        while True:
            for m in (1, 2, 5):
                if step * m >= n:
                    return step * m
            step *= 10

    @property
    def summary(self) -> str:
        minutes = len(self.bars)
        return (
            f"{self.total} jobs finished in the last {minutes} minutes "
            f"({self.failed} failed); busiest minute: {self.peak}."
        )

    @classmethod
    def build(cls, succeeded, failed, now=None, width=300, height=48) -> "BarChart":
        totals = [s + f for s, f in zip(succeeded, failed, strict=True)]
        peak = max(totals, default=0)
        scale_max = cls.nice_ceiling(max(peak, 1))
        slot = width / max(len(totals), 1)
        scale = height / scale_max
        start = chart_start(now) if now else None
        bars = []
        for i, (s, f) in enumerate(zip(succeeded, failed, strict=True)):
            failed_height = f * scale
            succeeded_height = s * scale
            failed_y = height - failed_height
            when = (start + timedelta(minutes=i)).strftime("%H:%M") if start else f"#{i + 1}"
            bars.append(
                Bar(
                    x=round(i * slot + slot * 0.1, 2),
                    succeeded_y=round(failed_y - succeeded_height, 2),
                    succeeded_height=round(succeeded_height, 2),
                    failed_y=round(failed_y, 2),
                    failed_height=round(failed_height, 2),
                    label=f"{when}: {s} succeeded, {f} failed",
                )
            )
        return cls(
            bars=tuple(bars),
            width=width,
            height=height,
            bar_width=round(slot * 0.8, 2),
            peak=peak,
            total=sum(totals),
            failed=sum(failed),
            scale_max=scale_max,
            start=start,
            end=start + timedelta(minutes=len(totals) - 1) if start else None,
        )


# -- lists ------------------------------------------------------------------------


@dataclass(frozen=True)
class JobPage:
    jobs: list[Job]
    next_cursor: str | None


def _encode_time(value: datetime | None) -> str:
    return value.isoformat() if value is not None else ""


def _decode_time(text: str) -> datetime | None:
    if not text:
        return None
    value = datetime.fromisoformat(text)
    if timezone.is_naive(value):
        raise ValueError("cursor times carry their offset")
    return value


@dataclass(frozen=True)
class Listing:
    """One order a status's list can be read in, and how to page through it by keyset.

    ``columns`` are (field, descending) pairs ending with ``id``; each order is
    one its partial index already has (read forwards or backwards), so that a
    page reads PAGE_SIZE + 1 index entries wherever it starts. ``nullable``:
    the leading time may be empty, and empty times sort as the newest.
    """

    label: str
    columns: tuple[tuple[str, bool], ...]
    nullable: bool = False

    @property
    def ordering(self) -> tuple:
        order = []
        for i, (name, descending) in enumerate(self.columns):
            if i == 0 and self.nullable:
                order.append(
                    F(name).desc(nulls_first=True) if descending else F(name).asc(nulls_last=True)
                )
            else:
                order.append(F(name).desc() if descending else F(name).asc())
        return tuple(order)

    def cursor_of(self, job: Job) -> str:
        values = []
        for name, _ in self.columns:
            value = getattr(job, name)
            values.append(_encode_time(value) if name.endswith("_at") else str(value))
        return ",".join(values)

    def _values(self, cursor: str) -> list:
        # Only the first column may be free text (a worker's or a key's name),
        # so split from the right.
        parts = cursor.rsplit(",", len(self.columns) - 1)
        if len(parts) != len(self.columns):
            raise ValueError("a cursor has a value per column")
        values = []
        for i, ((name, _), text) in enumerate(zip(self.columns, parts, strict=True)):
            if name.endswith("_at"):
                value = _decode_time(text)
                if value is None and not (i == 0 and self.nullable):
                    raise ValueError(f"{name} is never empty here")
            elif name in ("id", "priority"):
                value = int(text)
            else:
                value = text
            values.append(value)
        return values

    def after(self, cursor: str) -> Q:
        """The rows after ``cursor`` in this order: a range on the leading column
        (so the index is read from there on), then the tie-breakers."""
        values = self._values(cursor)
        (lead, descending), first = self.columns[0], values[0]
        if self.nullable and first is None:
            # Empty times come first newest-first and last oldest-first.
            pk = values[-1]
            empty_after = Q(**{f"{lead}__isnull": True, "id__lt" if descending else "id__gt": pk})
            return empty_after | Q(**{f"{lead}__isnull": False}) if descending else empty_after
        strictly = None
        for (name, desc), value in reversed(list(zip(self.columns, values, strict=True))):
            beyond = Q(**{f"{name}__{'lt' if desc else 'gt'}": value})
            strictly = beyond if strictly is None else beyond | (Q(**{name: value}) & strictly)
        found = Q(**{f"{lead}__{'lte' if descending else 'gte'}": first}) & strictly
        if self.nullable and not descending:
            found |= Q(**{f"{lead}__isnull": True})
        return found


def _newest_and_oldest(column: str, verb: str) -> dict[str, Listing]:
    return {
        "": Listing(f"{verb} most recently first", ((column, True), ("id", True)), nullable=True),
        "oldest": Listing(f"{verb} longest ago first", ((column, False), ("id", False)), True),
    }


#: Per status, the orders its list offers ("" is the default), each backed by
#: the status's partial index. Running jobs are few by nature (at most the
#: workers' threads), so sorting them by start time costs nothing; a succeeded
#: list by run time would sort every succeeded row, so it is not offered.
LISTINGS: dict[str, dict[str, Listing]] = {
    Job.Status.READY: {
        "": Listing("Next to run first", (("priority", True), ("run_at", False), ("id", False))),
        "oldest": Listing("Due longest first", (("run_at", False), ("id", False))),
        "newest": Listing("Due most recently first", (("run_at", True), ("id", True))),
    },
    Job.Status.SCHEDULED: {
        "": Listing("Soonest first", (("run_at", False), ("id", False))),
        "latest": Listing("Latest first", (("run_at", True), ("id", True))),
    },
    Job.Status.BLOCKED: {
        # The order jobs_job_blocked_idx keeps, and the order each key's jobs unblock in.
        "": Listing(
            "By concurrency key, next to run first",
            (("concurrency_key", False), ("priority", True), ("run_at", False), ("id", False)),
        ),
    },
    Job.Status.RUNNING: {
        "": Listing("By worker", (("locked_by", False), ("id", False))),
        "oldest": Listing("Running longest first", (("locked_at", False), ("id", False))),
        "newest": Listing("Started most recently first", (("locked_at", True), ("id", True))),
    },
    Job.Status.SUCCEEDED: _newest_and_oldest("finished_at", "Finished"),
    Job.Status.FAILED: _newest_and_oldest("failed_at", "Failed"),
    Job.Status.CANCELLED: _newest_and_oldest("finished_at", "Cancelled"),
}


def listing(status: str, sort: str = "") -> Listing:
    """The order ``sort`` names on a status's list; an unknown one is a BadRequest."""
    try:
        return LISTINGS[status][sort]
    except KeyError:
        raise BadRequest(f"No order {sort!r} on {status} jobs.") from None


def sort_choices(status: str) -> list[tuple[str, str]]:
    """(value, label) of the orders a status's list offers, the default first."""
    return [(key, found.label) for key, found in LISTINGS[status].items()]


#: The list pages' time filter: value → (label per status, how far from now).
TIME_RANGES = {
    "5m": timedelta(minutes=5),
    "1h": timedelta(hours=1),
    "1d": timedelta(days=1),
    "7d": timedelta(days=7),
}
_RANGE_WORDS = {"5m": "5 minutes", "1h": "an hour", "1d": "a day", "7d": "7 days"}
#: The same spans after "in the last": "in the last hour", not "... an hour".
_LAST_WORDS = {"5m": "5 minutes", "1h": "hour", "1d": "day", "7d": "7 days"}
#: Per status, what a time range means: the column it bounds, on which side
#: of now, and how it reads. Each bounds the column its list is ordered by
#: (its partial index's), so the filter narrows the index range read.
_RANGE_MEANING = {
    Job.Status.READY: ("run_at", "lte", -1, "due for more than {}"),
    Job.Status.SCHEDULED: ("run_at", "lte", +1, "due within {}"),
    Job.Status.BLOCKED: ("run_at", "lte", -1, "due for more than {}"),
    Job.Status.RUNNING: ("locked_at", "lte", -1, "running for more than {}"),
    Job.Status.SUCCEEDED: ("finished_at", "gte", -1, "finished in the last {}"),
    Job.Status.FAILED: ("failed_at", "gte", -1, "failed in the last {}"),
    Job.Status.CANCELLED: ("finished_at", "gte", -1, "cancelled in the last {}"),
}


def time_range_choices(status: str) -> list[tuple[str, str]]:
    """(value, label) of the time filter on a status's list."""
    words = _RANGE_MEANING[status][3]
    spans = _LAST_WORDS if "in the last" in words else _RANGE_WORDS
    return [(key, words.format(spans[key])) for key in TIME_RANGES]


def filtered_jobs(
    status: str,
    *,
    queue: str = "",
    name: str = "",
    time_range: str = "",
    now: datetime | None = None,
):
    """Jobs of one status, narrowed by the list page's filters.

    An unknown ``time_range`` is a BadRequest, not silently "any time".
    """
    jobs = Job.objects.filter(status=status)
    if queue:
        jobs = jobs.filter(queue=queue)
    if name:
        jobs = jobs.filter(name__icontains=name)
    if time_range:
        if time_range not in TIME_RANGES:
            raise BadRequest(f"Unknown time range {time_range!r}.")
        column, lookup, side, _ = _RANGE_MEANING[status]
        bound = (now or timezone.now()) + side * TIME_RANGES[time_range]
        jobs = jobs.filter(**{f"{column}__{lookup}": bound})
    return jobs


#: The payload's first characters a list row reads: enough for most
#: arguments, while the rest of a big payload stays in the database.
PREVIEW_CHARS = 400


def job_page(
    status: str,
    *,
    queue: str = "",
    name: str = "",
    time_range: str = "",
    sort: str = "",
    after: str = "",
    size: int = PAGE_SIZE,
) -> JobPage:
    """One page of a status's jobs, in one query and without counting.

    ``after`` is the ``next_cursor`` of the previous page; a malformed one
    is a BadRequest (400), not a silent first page; so is an unknown ``sort``
    (a key of ``LISTINGS[status]``). Each job gets
    ``arguments`` (a one-line summary) and ``run_duration`` (None if it never
    ran), with ``run_duration_display``.
    """
    order = listing(status, sort)
    jobs = (
        filtered_jobs(status, queue=queue, name=name, time_range=time_range)
        .only(*LIST_FIELDS)
        .annotate(payload_preview=Left(Cast("payload", TextField()), PREVIEW_CHARS))
        .order_by(*order.ordering)
    )
    if after:
        try:
            jobs = jobs.filter(order.after(after))
        except ValueError as exc:
            raise BadRequest(f"Bad page cursor {after!r}.") from exc
    rows = list(jobs[: size + 1])
    has_next = len(rows) > size
    rows = rows[:size]
    now = timezone.now()
    for job in rows:
        job.arguments = arguments.summary(job.payload_preview)
        job.run_duration = run_duration(job, now)
        job.run_duration_display = duration(job.run_duration) if job.run_duration else ""
    return JobPage(jobs=rows, next_cursor=order.cursor_of(rows[-1]) if has_next else None)


def run_duration(job: Job, now: datetime) -> timedelta | None:
    """How long the job's last attempt ran (runs, for a running job)."""
    if job.locked_at is None:
        return None
    end = {
        Job.Status.RUNNING: now,
        Job.Status.SUCCEEDED: job.finished_at,
        Job.Status.FAILED: job.failed_at,
        Job.Status.CANCELLED: job.finished_at,
    }.get(job.status)
    return max(end - job.locked_at, timedelta(0)) if end else None


# The filters' choices: the queues and task names among the newest (or
# soonest) CHOICE_ROWS jobs of each status, read through the status's partial
# index, so the cost does not grow with history (a DISTINCT over the whole
# table would read every row). A name seen only in older history can still
# be typed: the name filter is a text box that suggests these.
CHOICE_ROWS = COUNT_CAP
_CHOICES_SQL = """
SELECT DISTINCT queue, name FROM (
  SELECT * FROM (SELECT queue, name FROM {job} WHERE status = 'ready'
                  ORDER BY priority DESC, run_at, id LIMIT %(rows)s) AS ready
  UNION ALL
  SELECT * FROM (SELECT queue, name FROM {job} WHERE status = 'scheduled'
                  ORDER BY run_at, id LIMIT %(rows)s) AS scheduled
  UNION ALL
  SELECT * FROM (SELECT queue, name FROM {job} WHERE status = 'blocked'
                  ORDER BY concurrency_key, priority DESC, run_at, id LIMIT %(rows)s) AS blocked
  UNION ALL
  SELECT * FROM (SELECT queue, name FROM {job} WHERE status = 'running'
                  ORDER BY locked_by LIMIT %(rows)s) AS running
  UNION ALL
  SELECT * FROM (SELECT queue, name FROM {job} WHERE status = 'succeeded'
                  ORDER BY finished_at DESC LIMIT %(rows)s) AS succeeded
  UNION ALL
  SELECT * FROM (SELECT queue, name FROM {job} WHERE status = 'failed'
                  ORDER BY failed_at DESC LIMIT %(rows)s) AS failed
  UNION ALL
  SELECT * FROM (SELECT queue, name FROM {job} WHERE status = 'cancelled'
                  ORDER BY finished_at DESC LIMIT %(rows)s) AS cancelled
) AS seen
"""


@dataclass(frozen=True)
class FilterChoices:
    queues: list[str]
    names: list[str]


def filter_choices() -> FilterChoices:
    """The queues and task names to offer in the filters, in one bounded query."""
    sql = _CHOICES_SQL.format(job=connection.ops.quote_name(Job._meta.db_table))
    with connection.cursor() as cursor:
        cursor.execute(sql, {"rows": CHOICE_ROWS})
        rows = cursor.fetchall()
    return FilterChoices(
        queues=sorted({queue for queue, _ in rows}), names=sorted({name for _, name in rows})
    )


# -- one task name ----------------------------------------------------------------

#: A task page reads at most this many of the newest succeeded, and of the
#: newest failed, jobs of the last TASK_WINDOW (all tasks'), through the
#: partial indexes, and keeps this task's among them: no index leads with
#: the name, and this bounds the page's cost however long the history.
TASK_SAMPLE = 2_000
TASK_WINDOW = timedelta(days=1)
#: Error classes shown, most frequent first.
ERROR_GROUPS_SHOWN = 10


@dataclass
class ErrorGroup:
    """Failed jobs of one task that ended with the same exception class."""

    exception_class: str
    count: int = 0
    last_failed_at: datetime | None = None
    last_job_id: int | None = None
    last_message: str = ""


@dataclass
class TaskStats:
    name: str
    now: datetime
    ready: int = 0
    running: int = 0
    #: Scheduled jobs of this task among the soonest COUNT_CAP scheduled jobs,
    #: blocked ones among the first COUNT_CAP blocked (by key), and cancelled
    #: ones among the newest COUNT_CAP cancelled in the window.
    scheduled: int = 0
    blocked: int = 0
    cancelled: int = 0
    #: Which of those counts reached the cap: they are lower bounds.
    capped: frozenset[str] = frozenset()
    #: The finished jobs counted below ended at or after this time.
    since: datetime | None = None
    #: True when TASK_SAMPLE cut the window short of TASK_WINDOW.
    sampled: bool = False
    succeeded: int = 0
    failed: int = 0
    finished_last_hour: int = 0
    failed_last_hour: int = 0
    durations: list[timedelta] = field(default_factory=list)
    error_groups: list[ErrorGroup] = field(default_factory=list)

    @property
    def finished(self) -> int:
        return self.succeeded + self.failed

    @property
    def success_rate(self) -> str:
        return f"{100 * self.succeeded / self.finished:.1f} %" if self.finished else "-"

    @property
    def failure_rate(self) -> str:
        return f"{100 * self.failed / self.finished:.1f} %" if self.finished else "-"

    def _percentile(self, p: float) -> str:
        if not self.durations:
            return "-"
        ordered = sorted(self.durations)
        # Nearest rank: the smallest duration with p of them at or below it.
        return duration(ordered[max(0, -(-len(ordered) * p // 100) - 1)])

    @property
    def p50(self) -> str:
        return self._percentile(50)

    @property
    def p95(self) -> str:
        return self._percentile(95)

    @property
    def window_display(self) -> str:
        """The window, "day", or how far back the sample reached when it was cut short."""
        if not self.sampled:
            return "day"
        return duration(self.now - self.since) if self.since else "-"

    def _shown(self, kind: str) -> str:
        return f"{getattr(self, kind)}+" if kind in self.capped else str(getattr(self, kind))

    @property
    def scheduled_display(self) -> str:
        return self._shown("scheduled")

    @property
    def blocked_display(self) -> str:
        return self._shown("blocked")

    @property
    def cancelled_display(self) -> str:
        return self._shown("cancelled")


# Live work (ready, running) counted exactly, each on its partial index;
# scheduled and blocked jobs pile up, and so do cancelled ones (counted over
# the task window), so only the first COUNT_CAP of each are read, as on the
# overview, and "..._read" says whether there were more.
_TASK_COUNTS_SQL = """
SELECT 'ready', COUNT(*) FROM {job} WHERE status = 'ready' AND name = %(name)s
UNION ALL
SELECT 'running', COUNT(*) FROM {job} WHERE status = 'running' AND name = %(name)s
UNION ALL
SELECT 'scheduled', COUNT(*) FROM (
       SELECT name FROM {job} WHERE status = 'scheduled'
        ORDER BY run_at, id LIMIT %(cap)s) AS soonest WHERE name = %(name)s
UNION ALL
SELECT 'scheduled_read', COUNT(*) FROM (
       SELECT id FROM {job} WHERE status = 'scheduled'
        ORDER BY run_at, id LIMIT %(read)s) AS soonest
UNION ALL
SELECT 'blocked', COUNT(*) FROM (
       SELECT name FROM {job} WHERE status = 'blocked'
        ORDER BY concurrency_key, priority DESC, run_at, id LIMIT %(cap)s) AS first
 WHERE name = %(name)s
UNION ALL
SELECT 'blocked_read', COUNT(*) FROM (
       SELECT id FROM {job} WHERE status = 'blocked'
        ORDER BY concurrency_key, priority DESC, run_at, id LIMIT %(read)s) AS first
UNION ALL
SELECT 'cancelled', COUNT(*) FROM (
       SELECT name FROM {job} WHERE status = 'cancelled' AND finished_at >= %(start)s
        ORDER BY finished_at DESC LIMIT %(cap)s) AS newest
 WHERE name = %(name)s
UNION ALL
SELECT 'cancelled_read', COUNT(*) FROM (
       SELECT id FROM {job} WHERE status = 'cancelled' AND finished_at >= %(start)s
        ORDER BY finished_at DESC LIMIT %(read)s) AS newest
"""


# The newest TASK_SAMPLE succeeded and failed jobs of the window, each read
# in its partial index's order, and of those the task's. (An OR of the two,
# or a filter on the name first, would read the whole table: no index leads
# with the name.)
_TASK_SAMPLE_SQL = """
SELECT * FROM (
       SELECT id, status, locked_at, finished_at, last_error, name FROM {job}
        WHERE status = 'succeeded' AND finished_at >= %(start)s
        ORDER BY finished_at DESC LIMIT %(rows)s) AS succeeded
 WHERE name = %(name)s
UNION ALL
SELECT * FROM (
       SELECT id, status, locked_at, failed_at, last_error, name FROM {job}
        WHERE status = 'failed' AND failed_at >= %(start)s
        ORDER BY failed_at DESC LIMIT %(rows)s) AS failed
 WHERE name = %(name)s
"""


def _db_time(value):
    """A raw row's datetime, aware: SQLite's come as text, or naive."""
    if isinstance(value, str) or (value is not None and timezone.is_naive(value)):
        return connection.ops.convert_datetimefield_value(value, None, connection)
    return value


def task_stats(name: str, now: datetime | None = None) -> TaskStats:
    """One task name's counts, rates, durations and failures, in four bounded queries."""
    now = now or timezone.now()
    stats = TaskStats(name=name, now=now)
    start = now - TASK_WINDOW
    sql = _TASK_COUNTS_SQL.format(job=connection.ops.quote_name(Job._meta.db_table))
    params = {
        "name": name,
        "cap": COUNT_CAP,
        "read": COUNT_CAP + 1,
        "start": connection.ops.adapt_datetimefield_value(start),
    }
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        counts = dict(cursor.fetchall())
    stats.ready, stats.running = counts["ready"], counts["running"]
    stats.scheduled, stats.blocked, stats.cancelled = (
        counts["scheduled"], counts["blocked"], counts["cancelled"]
    )  # fmt: skip
    stats.capped = frozenset(
        kind for kind in ("scheduled", "blocked", "cancelled") if counts[f"{kind}_read"] > COUNT_CAP
    )

    since = start
    for status, column in ((Job.Status.SUCCEEDED, "finished_at"), (Job.Status.FAILED, "failed_at")):
        # Where the newest TASK_SAMPLE rows stop: older ones are left unread.
        edge = (
            Job.objects.filter(status=status, **{f"{column}__gte": start})
            .order_by(F(column).desc())
            .values_list(column, flat=True)[TASK_SAMPLE - 1 : TASK_SAMPLE]
        )
        for when in edge:
            stats.sampled = True
            since = max(since, when)
    stats.since = since
    sql = _TASK_SAMPLE_SQL.format(job=connection.ops.quote_name(Job._meta.db_table))
    params = {
        "name": name,
        "start": connection.ops.adapt_datetimefield_value(start),
        "rows": TASK_SAMPLE,
    }
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = [
            (pk, status, _db_time(locked_at), _db_time(ended), last_error)
            for pk, status, locked_at, ended, last_error, _name in cursor.fetchall()
        ]
    groups: dict[str, ErrorGroup] = {}
    hour_ago = now - timedelta(hours=1)
    for pk, status, locked_at, ended, last_error in rows:
        if ended is None or ended < since:
            continue  # the other status's sample reached further back
        if status == Job.Status.FAILED:
            stats.failed += 1
            stats.failed_last_hour += ended >= hour_ago
            exception_class, _, message = (last_error or "(no error recorded)").partition(": ")
            group = groups.setdefault(exception_class, ErrorGroup(exception_class))
            group.count += 1
            if group.last_failed_at is None or ended > group.last_failed_at:
                group.last_failed_at, group.last_job_id = ended, pk
                group.last_message = message
        else:
            stats.succeeded += 1
        stats.finished_last_hour += ended >= hour_ago
        if locked_at is not None:
            stats.durations.append(max(ended - locked_at, timedelta(0)))
    stats.error_groups = sorted(groups.values(), key=lambda g: (-g.count, g.exception_class))[
        :ERROR_GROUPS_SHOWN
    ]
    return stats


# -- one job ----------------------------------------------------------------------


def pretty_json(value) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


@dataclass(frozen=True)
class Attempt:
    """One attempt of a job, as its error entry (or its row, for the last) tells it."""

    number: int | str
    outcome: str  # "failed", "succeeded" or "running"
    worker: str = ""
    started_at: datetime | None = None
    ended_at: datetime | None = None
    exception_class: str = ""
    message: str = ""
    traceback: str = ""
    duration: timedelta | None = None

    @property
    def duration_display(self) -> str:
        return duration(self.duration) if self.duration is not None else ""


def _parse_time(value) -> datetime | None:
    """An error entry's ISO time, or None if it has none we can read."""
    try:
        return datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return None


def attempts(job: Job, now: datetime) -> list[Attempt]:
    """The job's attempts that are on record, newest first: its kept errors, and the
    attempt that succeeded or runs now. (Entries written before errors carried
    ``started_at`` have no run time.)"""
    found = []
    for i, error in enumerate(job.errors):
        started, ended = _parse_time(error.get("started_at")), _parse_time(error.get("at"))
        found.append(
            Attempt(
                number=error.get("attempt") or i + 1,
                outcome="failed",
                worker=error.get("worker") or "",
                started_at=started,
                ended_at=ended,
                exception_class=error.get("exception_class", ""),
                message=error.get("message", ""),
                traceback=error.get("traceback", ""),
                duration=max(ended - started, timedelta(0)) if started and ended else None,
            )
        )
    if job.status in (Job.Status.SUCCEEDED, Job.Status.RUNNING):
        ended = job.finished_at if job.status == Job.Status.SUCCEEDED else None
        started = job.locked_at
        found.append(
            Attempt(
                number=job.attempts or len(found) + 1,
                outcome=job.status,
                worker=job.locked_by,
                started_at=started,
                ended_at=ended,
                duration=max((ended or now) - started, timedelta(0)) if started else None,
            )
        )
    return found[::-1]


# -- workers ----------------------------------------------------------------------


@dataclass
class WorkerRow:
    worker: Worker
    stale: bool
    jobs: list[Job]
    heartbeat_age: timedelta
    #: Jobs that ended on this worker, succeeded or failed (for good), since it
    #: started; "n+" when WORKER_SAMPLE cut the count short.
    succeeded: int = 0
    failed: int = 0
    capped: frozenset[str] = frozenset()

    @property
    def heartbeat_age_display(self) -> str:
        return duration(self.heartbeat_age)

    @property
    def succeeded_display(self) -> str:
        return f"{self.succeeded}+" if "succeeded" in self.capped else str(self.succeeded)

    @property
    def failed_display(self) -> str:
        return f"{self.failed}+" if "failed" in self.capped else str(self.failed)


@dataclass(frozen=True)
class WorkerList:
    workers: list[WorkerRow]
    #: Running jobs whose worker has no row (it crashed, or was deleted);
    #: the next live worker gives them back after HEARTBEAT_TIMEOUT.
    orphaned_jobs: list[Job]
    heartbeat_timeout: float
    sample: int = 0


#: More running jobs than this is a sign of trouble, not a page to render.
MAX_RUNNING_SHOWN = 500
#: The workers' finished jobs are counted over at most this many of the newest
#: succeeded, and failed, jobs since the oldest worker started.
WORKER_SAMPLE = TASK_SAMPLE

# A worker's name is unique to its process, so every job that ended with its
# name in locked_by ended since it started: the time bound only stops the read.
_WORKER_COUNTS_SQL = """
SELECT 'succeeded', locked_by, COUNT(*) FROM (
       SELECT locked_by FROM {job} WHERE status = 'succeeded' AND finished_at >= %(since)s
        ORDER BY finished_at DESC LIMIT %(rows)s) AS succeeded GROUP BY locked_by
UNION ALL
SELECT 'failed', locked_by, COUNT(*) FROM (
       SELECT locked_by FROM {job} WHERE status = 'failed' AND failed_at >= %(since)s
        ORDER BY failed_at DESC LIMIT %(rows)s) AS failed GROUP BY locked_by
"""


def _worker_counts(since: datetime) -> tuple[dict, frozenset[str]]:
    """{(status, worker name): jobs}, and which statuses' samples were cut short."""
    sql = _WORKER_COUNTS_SQL.format(job=connection.ops.quote_name(Job._meta.db_table))
    params = {
        "since": connection.ops.adapt_datetimefield_value(since),
        "rows": WORKER_SAMPLE + 1,
    }
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    counts = {(status, name): n for status, name, n in rows}
    read = {
        status: sum(n for (s, _), n in counts.items() if s == status)
        for status in ("succeeded", "failed")
    }
    return counts, frozenset(status for status, n in read.items() if n > WORKER_SAMPLE)


def workers(now: datetime | None = None) -> WorkerList:
    """Every worker row with its current jobs and the jobs it finished, in three queries."""
    now = now or timezone.now()
    timeout = jobs_settings().HEARTBEAT_TIMEOUT
    cutoff = now - timedelta(seconds=timeout)
    running = (
        Job.objects.filter(status=Job.Status.RUNNING)
        .only(*LIST_FIELDS)
        .order_by("locked_at", "id")[:MAX_RUNNING_SHOWN]
    )
    by_worker: dict[str, list[Job]] = {}
    for job in running:
        by_worker.setdefault(job.locked_by, []).append(job)
    found = list(Worker.objects.order_by("hostname", "started_at", "name"))
    counts, capped = (
        _worker_counts(min(w.started_at for w in found)) if found else ({}, frozenset())
    )
    rows = [
        WorkerRow(
            worker=worker,
            stale=worker.last_heartbeat_at < cutoff,
            jobs=by_worker.pop(worker.name, []),
            heartbeat_age=max(now - worker.last_heartbeat_at, timedelta(0)),
            succeeded=counts.get(("succeeded", worker.name), 0),
            failed=counts.get(("failed", worker.name), 0),
            capped=capped,
        )
        for worker in found
    ]
    orphaned = [job for jobs in by_worker.values() for job in jobs]
    return WorkerList(
        workers=rows, orphaned_jobs=orphaned, heartbeat_timeout=timeout, sample=WORKER_SAMPLE
    )


# -- formatting -------------------------------------------------------------------


def duration(value: timedelta) -> str:
    """A short human duration: 0.4 s, 12 s, 3 min, 2 h 5 min, 3 d 4 h."""
    seconds = value.total_seconds()
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"
