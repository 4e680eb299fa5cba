"""``manage.py jobs SUBCOMMAND``: a thin command line over the worker and models."""

import logging
import os
import sys
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Count, Min
from django.utils import timezone

from jobs.checks import check_database
from jobs.conf import jobs_settings
from jobs.models import Job
from jobs.worker import EXIT_STUCK, Pool, WorkerLoop, WorkerOptions


def _queue_list(value: str) -> tuple[str, ...]:
    return tuple(q.strip() for q in value.split(",") if q.strip())


def _positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise ValueError(value)
    return number


def _pool(value: str) -> Pool:
    """QUEUES:N, as delayed_job's --pool: "emails:2", "a,b:4", "*:3"."""
    queues, _, size = value.rpartition(":")
    if not queues or not size.isdigit() or int(size) < 1:
        raise ValueError(value)
    return Pool(queues=() if queues == "*" else _queue_list(queues), size=int(size))


logger = logging.getLogger("jobs")


def _log_database_warnings() -> None:
    """What ``manage.py check`` says about the database, in the worker's own
    log too: on a platform, nobody reads a worker's start-up on a terminal."""
    for message in check_database(None):
        logger.warning("%s: %s %s", message.id, message.msg, message.hint or "")


def _exit(status: int, worker: WorkerLoop) -> None:
    """Exit with ``status``. A worker with a thread stuck in job code exits at
    once (os._exit): the interpreter's normal exit could wait on that thread,
    and its job may run again only once the thread is gone."""
    if worker.status == EXIT_STUCK:
        worker.release_stuck_claims()
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    sys.exit(status)


class Command(BaseCommand):
    help = "Run and manage background jobs (work, workoff, clear, check, stats, retry, cancel)."

    def add_arguments(self, parser):
        commands = parser.add_subparsers(dest="subcommand", required=True, metavar="SUBCOMMAND")

        for name, help_text in (
            ("work", "Run jobs until stopped (SIGTERM or Ctrl-C)."),
            ("workoff", "Run every job due now, then exit; non-zero if any failed."),
        ):
            sub = commands.add_parser(name, help=help_text)
            sub.add_argument(
                "--queues", type=_queue_list, default=(), help="a,b: only these queues"
            )
            sub.add_argument("--min-priority", type=int)
            sub.add_argument("--max-priority", type=int)
            sub.add_argument("--sleep-delay", type=float, help="seconds between polls when idle")
            sub.add_argument(
                "--concurrency",
                type=_positive_int,
                help="jobs run at once, in threads (default JOBS['CONCURRENCY'])",
            )
            sub.add_argument(
                "--pool",
                type=_pool,
                action="append",
                dest="pools",
                metavar="QUEUES:N",
                help="N threads for these queues ('*' for all); repeatable",
            )
            sub.add_argument(
                "--no-listen",
                action="store_false",
                dest="listen",
                default=None,
                help="poll instead of LISTEN (PostgreSQL)",
            )
            if name == "work":
                sub.add_argument("--exit-on-complete", action="store_true")

        clear = commands.add_parser("clear", help="Delete jobs that are not running.")
        clear.add_argument("--queue")
        clear.add_argument("--failed", action="store_true", help="only failed jobs")
        clear.add_argument("--no-input", action="store_false", dest="interactive")

        check = commands.add_parser("check", help="Exit non-zero if a due job waited too long.")
        check.add_argument("--max-age", type=float, required=True, help="seconds")

        commands.add_parser("stats", help="Counts per queue and status, oldest due job.")

        retry = commands.add_parser("retry", help="Put failed jobs back in the queue.")
        retry.add_argument("ids", nargs="*", type=int)
        retry.add_argument("--failed", action="store_true", help="every failed job")

        cancel = commands.add_parser(
            "cancel", help="Cancel waiting jobs; ask running ones to stop (no retry follows)."
        )
        cancel.add_argument("ids", nargs="+", type=int)

    def handle(self, *args, subcommand, **options):
        return getattr(self, f"handle_{subcommand}")(**options)

    # -- workers --------------------------------------------------------------------

    def _worker(self, options, exit_on_complete):
        _log_database_warnings()
        pools = options["pools"]
        if pools and (options["queues"] or options["concurrency"]):
            raise CommandError("Use either --pool, or --queues/--concurrency.")
        if not pools:
            size = options["concurrency"] or jobs_settings().CONCURRENCY
            pools = [Pool(queues=options["queues"], size=size)]
        return WorkerLoop(
            WorkerOptions(
                pools=tuple(pools),
                min_priority=options["min_priority"],
                max_priority=options["max_priority"],
                sleep_delay=options["sleep_delay"],
                exit_on_complete=exit_on_complete,
                listen=options["listen"],
            )
        )

    def handle_work(self, **options):
        worker = self._worker(options, options["exit_on_complete"])
        worker.install_signal_handlers()
        _exit(worker.run(), worker)

    def handle_workoff(self, **options):
        worker = self._worker(options, exit_on_complete=True)
        worker.install_signal_handlers()
        status = worker.run()
        counts = worker.counts
        failed = counts["failed"] + counts["retry"]
        ran = counts["succeeded"] + failed
        self.stdout.write(f"{ran} jobs ran: {counts['succeeded']} succeeded, {failed} failed")
        self.stdout.flush()
        _exit(status or (1 if failed else 0), worker)

    # -- operators --------------------------------------------------------------------

    def handle_clear(self, *, queue, failed, interactive, **options):
        jobs = Job.objects.all()
        if queue:
            jobs = jobs.filter(queue=queue)
        if failed:
            jobs = jobs.filter(status=Job.Status.FAILED)
        what = " ".join(
            filter(
                None, ["failed" if failed else "", "jobs", f"in queue {queue!r}" if queue else ""]
            )
        )
        if interactive:
            answer = input(
                f"Delete {jobs.exclude(status=Job.Status.RUNNING).count()} {what}? [y/N] "
            )
            if answer.strip().lower() not in {"y", "yes"}:
                raise CommandError("Nothing deleted.")
        self.stdout.write(f"Deleted {jobs.discard()} {what}.")

    def handle_check(self, *, max_age, **options):
        oldest = Job.objects.due().aggregate(oldest=Min("run_at"))["oldest"]
        if oldest is None:
            self.stdout.write("OK: no due jobs waiting.")
            return
        waited = timezone.now() - oldest
        if waited > timedelta(seconds=max_age):
            raise CommandError(
                f"The oldest due job has waited {waited.total_seconds():.0f}s (> {max_age:g}s)."
            )
        self.stdout.write(f"OK: the oldest due job has waited {waited.total_seconds():.0f}s.")

    def handle_stats(self, **options):
        rows = (
            Job.objects.values("queue", "status")
            .annotate(n=Count("id"))
            .order_by("queue", "status")
        )
        statuses = list(Job.Status.values)
        table = {}
        for row in rows:
            table.setdefault(row["queue"], dict.fromkeys(statuses, 0))[row["status"]] = row["n"]
        self.stdout.write(f"{'queue':20} " + " ".join(f"{s:>10}" for s in statuses))
        for queue_name, counts in table.items():
            self.stdout.write(f"{queue_name:20} " + " ".join(f"{counts[s]:>10}" for s in statuses))
        oldest = Job.objects.due().aggregate(oldest=Min("run_at"))["oldest"]
        if oldest is None:
            self.stdout.write("oldest due job: none")
        else:
            waited = (timezone.now() - oldest).total_seconds()
            self.stdout.write(f"oldest due job: waiting {waited:.1f}s")

    def handle_retry(self, *, ids, failed, **options):
        if not ids and not failed:
            raise CommandError("Name job ids, or pass --failed for every failed job.")
        jobs = Job.objects.filter(status=Job.Status.FAILED)
        if ids:
            jobs = jobs.filter(pk__in=ids)
            missing = set(ids) - set(jobs.values_list("pk", flat=True))
            if missing:
                raise CommandError(f"Not failed jobs: {', '.join(map(str, sorted(missing)))}.")
        self.stdout.write(f"Retrying {jobs.retry()} jobs.")

    def handle_cancel(self, *, ids, **options):
        jobs = Job.objects.filter(pk__in=ids)
        found = dict(jobs.values_list("pk", "status"))
        missing = sorted(set(ids) - set(found))
        if missing:
            raise CommandError(f"No such jobs: {', '.join(map(str, missing))}.")
        cancelled, asked = jobs.cancel()
        self.stdout.write(
            f"Cancelled {cancelled} waiting jobs; asked {asked} running jobs to stop."
        )
        over = sorted(pk for pk, status in found.items() if status in Job.FINISHED)
        if over:
            self.stdout.write(f"Already finished, left as they were: {', '.join(map(str, over))}.")
