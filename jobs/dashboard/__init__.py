"""The staff dashboard: overview, job lists, a job's page, workers, and actions.

Mounted by the site with ``path("jobs/", include("jobs.urls"))``. Reads live in
``queries`` (a fixed number of queries per page, none per row); ``views`` only
checks access, calls the model verbs and renders.
"""
