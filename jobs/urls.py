"""The jobs dashboard's URLs; the site mounts them with
``path("jobs/", include("jobs.urls"))``."""

from django.urls import path, re_path

from .dashboard import views
from .models import Job

app_name = "jobs"

_STATUS = "|".join(Job.Status.values)

urlpatterns = [
    path("", views.overview, name="overview"),
    path("stats.json", views.stats, name="stats"),
    path("workers/", views.workers, name="workers"),
    path("task/", views.task, name="task"),
    re_path(rf"^(?P<status>{_STATUS})/$", views.job_list, name="list"),
    re_path(rf"^(?P<status>{_STATUS})/bulk/$", views.bulk_action, name="bulk"),
    path("<int:pk>/", views.job_detail, name="job"),
    path("<int:pk>/retry/", views.retry_job, name="retry"),
    path("<int:pk>/run-now/", views.run_job_now, name="run_now"),
    path("<int:pk>/discard/", views.discard_job, name="discard"),
    path("<int:pk>/cancel/", views.cancel_job, name="cancel"),
    path("<int:pk>/reschedule/", views.reschedule_job, name="reschedule"),
    path("queues/pause/", views.pause_queue, name="pause"),
    path("queues/resume/", views.resume_queue, name="resume"),
]
