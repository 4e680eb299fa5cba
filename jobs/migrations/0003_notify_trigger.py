"""On PostgreSQL, every INSERT into jobs_job NOTIFYs the listening workers.

A statement-level trigger sends one notification per queue per statement, in
the inserting transaction, so workers hear of a job exactly when it commits,
and enqueueing costs no extra round trip.
"""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION jobs_notify_enqueued() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('jobs_enqueued', queue) FROM (SELECT DISTINCT queue FROM new_jobs) AS q;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER jobs_job_notify_enqueued
    AFTER INSERT ON jobs_job
    REFERENCING NEW TABLE AS new_jobs
    FOR EACH STATEMENT EXECUTE FUNCTION jobs_notify_enqueued();
"""

DROP = """
DROP TRIGGER IF EXISTS jobs_job_notify_enqueued ON jobs_job;
DROP FUNCTION IF EXISTS jobs_notify_enqueued();
"""


def create_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def drop_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("jobs", "0002_ready_run_at_index")]

    operations = [migrations.RunPython(create_trigger, drop_trigger)]
