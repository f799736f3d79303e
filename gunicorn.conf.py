"""gunicorn settings for `make serve` and the load test (gunicorn reads this file by default).

Environment: PORT (default 8000), WEB_CONCURRENCY (worker processes, default 4),
GUNICORN_THREADS (threads per worker, default 4), GUNICORN_ACCESS_LOG (a path, or "-" for
stderr; off by default), GUNICORN_GRACEFUL_TIMEOUT (seconds a stopping worker gets, default 30).

Web workers run no background work: report jobs, re-evaluations and mail are on the task queue,
run by `flask worker` (governance/tasks.py), so a web worker's restart loses none of it.
"""

import os

wsgi_app = "governance:create_app()"
bind = f"127.0.0.1:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "4"))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
# One thread per worker: the plain sync worker, which takes the next connection from the shared
# listening socket only when it is free, so waiting requests are served first come, first
# served by whichever worker frees up (behind a buffering reverse proxy, as in production).
worker_class = "gthread" if threads > 1 else "sync"
timeout = 60
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "30"))
keepalive = 5
max_requests = 20_000
max_requests_jitter = 2_000
accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None
errorlog = "-"
proc_name = "governance"

