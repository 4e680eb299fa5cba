"""Fault injection, load and abuse tests: real processes, real databases.

Every module is marked ``faults``, so ``pytest -m faults`` runs the suite on its own.
"""
