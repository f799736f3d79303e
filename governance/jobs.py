"""Background jobs: work a request queued, run outside it, with its state in its own row.

A job's row (a report, a re-evaluation run) has the columns of `Job`, so any worker process can
show its progress. The request queues the job (state `queued`) and commits, then starts it here:
in a thread with its own application context (so its own database session), or at once in the
caller when JOBS_INLINE (the tests). The job claims its row (only one worker can move it from
`queued` to `running`), writes its progress under that claim, and checks the claim again before
it writes its result. A job whose row has not moved for some minutes died with its process.
"""

import secrets
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from flask import Flask, current_app
from sqlalchemy import String, Text, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Mapped, mapped_column

from . import audit
from .database import utcnow, write_intent, writing
from .extensions import db

WORKING = ("queued", "running")


class Job:
    """Mixin: the columns of a job kept in its row, beside its state column (`JOB_STATE` names
    it), which goes from `queued` to `running`, then `done` or `failed` (or further)."""

    JOB_STATE = "state"
    # What moves while the job works: not the record's history, so not audited.
    UNAUDITED = frozenset({"progress", "progress_note", "job_token"})

    progress: Mapped[int] = mapped_column(default=0)
    progress_note: Mapped[str | None] = mapped_column(String(200))
    error: Mapped[str | None] = mapped_column(Text)
    job_token: Mapped[str | None] = mapped_column(String(32))
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]

    @property
    def job_state(self) -> str:
        return getattr(self, self.JOB_STATE)

    @property
    def is_working(self) -> bool:
        return self.job_state in WORKING


# --- running -------------------------------------------------------------------------------


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


# --- the claim -----------------------------------------------------------------------------


def claim(model: type[Job], record_id: int, actor: audit.Actor) -> str | None:
    """Move a queued job to running (audited, as done by `actor`) and commit; return the claim's
    token, or None when another worker has it. The row is locked while it is read (SQLite: the
    write transaction; PostgreSQL: FOR UPDATE)."""
    with audit.acting_as(actor):
        job = db.session.scalar(select(model).where(model.id == record_id).with_for_update()
                                .execution_options(populate_existing=True))
        if job is None or job.is_void or job.job_state != "queued":
            db.session.rollback()
            return None
        token = secrets.token_hex(16)
        setattr(job, model.JOB_STATE, "running")
        job.job_token, job.started_at, job.error = token, utcnow(), None
        job.progress, job.progress_note = 1, "Starting"
        db.session.commit()
    return token


def held(model: type[Job], record_id: int, token: str) -> Job | None:
    """The job's row, read afresh, if the job with this token still holds it (else None: a job
    started again in its place has it)."""
    job = db.session.get(model, record_id, populate_existing=True)
    return job if job is not None and job.job_token == token else None


# --- progress ------------------------------------------------------------------------------


def report_progress(model: type[Job], record_id: int, token: str, percent: float,
                    note: str | None, connection) -> bool:
    """Write a job's progress (1 to 99 %; 100 is its result's) and note on `connection` if the
    job still holds its claim; return whether it does. Not audited, and not a new version."""
    table = model.__table__
    values = {"progress": max(1, min(99, int(percent)))}
    if note is not None:
        values["progress_note"] = note[:200]
    result = connection.execute(update(table)
                                .where(table.c.id == record_id, table.c.job_token == token)
                                .values(**values))
    return result.rowcount == 1


class Progress:
    """A job's progress bar, written on a connection of its own (so the job's read snapshot stays
    open and one consistent view of the data is reported), never backwards."""

    # A write costs a transaction: write when the percentage moves, or a new note has waited
    # this long (a job may report its steps hundreds of times).
    QUIET_SECONDS = 1.0

    def __init__(self, model: type[Job], record_id: int, token: str):
        self.model = model
        self.record_id = record_id
        self.token = token
        self.percent = 0
        self.written_at = 0.0

    def __call__(self, percent: float, note: str | None = None) -> None:
        percent = max(self.percent, min(99, int(percent)))
        now = time.monotonic()
        if percent == self.percent and (note is None
                                        or now - self.written_at < self.QUIET_SECONDS):
            return
        self.percent = percent
        self.written_at = now
        try:
            with writing(), db.engine.begin() as connection:
                report_progress(self.model, self.record_id, self.token, percent, note,
                                connection)
        except OperationalError:
            # The progress bar is a courtesy: a busy database must not fail the job.
            current_app.logger.warning("%s %s: progress not recorded", self.model.__tablename__,
                                       self.record_id, exc_info=True)


# --- stalled jobs --------------------------------------------------------------------------

STALLED = "It stopped responding (probably because the server restarted)."


def is_stalled(job: Job, minutes: float) -> bool:
    """Whether a queued or running job's row has not moved for `minutes`: its job died with its
    process (a restart, a killed worker), as a live one writes its progress more often."""
    if not job.is_working:
        return False
    return utcnow() - (job.updated_at or job.created_at) > timedelta(minutes=minutes)


def fail_if_stalled(job: Job, minutes: float) -> bool:
    """Mark a stalled job failed, saying so (not flushed); return whether it was stalled."""
    if not is_stalled(job, minutes):
        return False
    setattr(job, job.JOB_STATE, "failed")
    job.error = STALLED
    job.finished_at = utcnow()
    return True
