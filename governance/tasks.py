"""The task queue: work that runs outside the request that asked for it, on huey.

Requests put tasks on the queue; `flask worker` (a huey consumer, started beside the web server
by `make run` and `make serve`) takes them off and runs them in its own processes' threads, so a
web worker's restart loses nothing and any number of machines can share one queue.

The queue is TASK_QUEUE_URL: by default a SQLite file in the data folder (nothing to install; one
machine), or `redis://HOST:PORT/DB` when the application spans machines. Every task finds its
work in the database (a job's row, a notification's state), not in the message: a message lost
or delivered twice changes nothing, and the periodic sweep queues again what waited too long.

Tasks (their names are the queue's; renaming one strands the messages already queued):
  run-job            a job of a kind of governance/jobs.py (a report, a re-evaluation, the day)
  deliver-mail       hand the notifications waiting for mail to the SMTP server
  sweep              every minute: jobs whose worker died, queued jobs nobody took, unsent mail
  daily              every ten minutes: start the day's run once it is due (governance/daily.py)
"""

from collections.abc import Callable
from pathlib import Path

from flask import Flask, current_app

from .errors import DomainError

SWEEP_EVERY_MINUTES = 1
DAILY_CHECK_EVERY_MINUTES = 10


class QueueUnavailable(DomainError):
    """The task queue cannot be reached: the work was not queued, and nothing was saved."""

    status = 503


def queue_url(config) -> str:
    return config.get("TASK_QUEUE_URL") or f"sqlite:///{Path(config['DATA_DIR']) / 'tasks.db'}"


def queue_of(app: Flask):
    """The application's huey instance, built on first use with its tasks."""
    queue = app.extensions.get("tasks")
    if queue is None:
        queue = app.extensions["tasks"] = _build(app)
    return queue


def _build(app: Flask):
    from huey import RedisHuey, SqliteHuey

    url = queue_url(app.config)
    if url.startswith(("redis://", "rediss://", "unix://")):
        queue = RedisHuey("governance", url=url, results=False, utc=True)
    elif url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        path.parent.mkdir(parents=True, exist_ok=True)
        queue = SqliteHuey("governance", filename=str(path), results=False, utc=True,
                           timeout=30)
    else:
        raise ValueError(f"TASK_QUEUE_URL must be sqlite:///PATH or redis://…, not {url!r}")
    _register(queue, app)
    return queue


def _register(queue, app: Flask) -> None:
    from huey import crontab

    def in_app(work: Callable[[], None]) -> None:
        with app.app_context():
            try:
                work()
            finally:
                from .extensions import db

                db.session.remove()

    @queue.task(name="run-job")
    def run_job(kind_name: str, record_id: int) -> None:
        from . import jobs

        in_app(lambda: jobs.run_queued_job(kind_name, record_id))

    @queue.task(name="deliver-mail")
    def deliver_mail() -> None:
        from .notifications import mail

        in_app(mail.deliver_waiting)

    @queue.periodic_task(crontab(minute=f"*/{SWEEP_EVERY_MINUTES}"), name="sweep")
    def sweep() -> None:
        from . import jobs
        from .notifications import mail

        def work():
            jobs.sweep()
            mail.deliver_waiting()

        in_app(work)

    @queue.periodic_task(crontab(minute=f"*/{DAILY_CHECK_EVERY_MINUTES}"), name="daily")
    def daily() -> None:
        from . import daily as daily_run

        in_app(daily_run.start_if_due)

    queue.governance_tasks = {"run-job": run_job, "deliver-mail": deliver_mail}


def enqueue(name: str, *args) -> None:
    """Put a task on the queue (or, when JOBS_INLINE, run it now, in an application context of
    its own as a worker would); raise QueueUnavailable when the queue cannot take it."""
    app = current_app._get_current_object()
    task = queue_of(app).governance_tasks[name]
    if app.config["JOBS_INLINE"]:
        task.call_local(*args)
        return
    try:
        task(*args)
    except Exception as error:  # the broker's own errors: redis, sqlite3, OSError
        app.logger.exception("the task queue refused %s%r", name, args)
        raise QueueUnavailable(
            f"The task queue cannot be reached ({type(error).__name__}), so the work was not "
            "started and nothing was saved. Try again in a minute; if it persists, the "
            "administrator should check the task queue (TASK_QUEUE_URL).") from error


def check_reachable() -> None:
    """Raise QueueUnavailable unless the queue answers now (asked before saving work that a
    task must carry out, so a queue that is down leaves nothing half done)."""
    app = current_app._get_current_object()
    if app.config["JOBS_INLINE"]:
        return
    try:
        queue_of(app).pending_count()
    except Exception as error:
        app.logger.warning("the task queue does not answer: %s", error)
        raise QueueUnavailable(
            f"The task queue cannot be reached ({type(error).__name__}), so nothing was "
            "started and nothing was saved. Try again in a minute; if it persists, the "
            "administrator should check the task queue (TASK_QUEUE_URL).") from error


def run_worker(app: Flask, workers: int) -> None:
    """Run the queue's consumer in this process until it is stopped (SIGINT: let the running
    tasks finish; SIGTERM: stop now), then hand this process's running jobs back."""
    from . import jobs

    consumer = queue_of(app).create_consumer(workers=workers, worker_type="thread",
                                             periodic=True, initial_delay=0.05,
                                             max_delay=0.5, check_worker_health=True,
                                             shutdown_timeout=15)
    try:
        consumer.run()
    finally:
        jobs.hand_back(app, wait_seconds=0)
