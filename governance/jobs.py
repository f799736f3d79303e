"""Background jobs: work a request queued, run in a thread of this process.

The job's state lives in its own table (reports, re-evaluation runs), so any worker can show its
progress; this module only starts the work: in a thread with its own application context (so its
own database session), or at once in the caller when JOBS_INLINE (the tests).
"""

import threading
from collections.abc import Callable

from flask import Flask, current_app

from .database import write_intent
from .extensions import db


def start(name: str, work: Callable[[int], object], record_id: int) -> None:
    """Run work(record_id) in the background (or inline when JOBS_INLINE)."""
    app = current_app._get_current_object()
    if app.config["JOBS_INLINE"]:
        token = write_intent.set(True)  # a job writes, whatever the request that started it
        try:
            work(record_id)
        finally:
            write_intent.reset(token)
        return
    thread = threading.Thread(target=_run_in_thread, args=(app, name, work, record_id),
                              name=f"{name}-{record_id}", daemon=True)
    thread.start()
    threads = app.extensions.setdefault("background_jobs", [])
    threads[:] = [running for running in threads if running.is_alive()]
    threads.append(thread)


def _run_in_thread(app: Flask, name: str, work: Callable[[int], object], record_id: int) -> None:
    with app.app_context():
        try:
            work(record_id)
        except Exception:  # the job records its own failures; this guards the guard
            app.logger.exception("%s %s crashed", name, record_id)
        finally:
            db.session.remove()


def wait_for_threads(timeout: float = 120) -> None:
    """Wait for the background jobs this process started (the tests use it)."""
    threads = current_app.extensions.get("background_jobs", [])
    for thread in list(threads):
        thread.join(timeout)
        if not thread.is_alive():
            threads.remove(thread)
