"""The benchmark suite for jobs and the signup site: figures, not assertions.

Run ``python -m bench --help``. The parent process (``__main__``) creates a
throwaway database per engine and runs ``bench.runner`` against it in a child
process, which drives real ``manage.py jobs`` workers and a real gunicorn.
"""
