"""Signup demo: a Django site whose emails go out through the jobs queue."""
