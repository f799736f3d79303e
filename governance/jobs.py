"""Background jobs: work a request queued, run by the task queue, with its state in its own row.

A job's row (a report, a re-evaluation run, the daily run) has the columns of `Job`, so any
process can show its progress. The request queues the job (state `queued`) and commits, then
puts a `run-job` task on the task queue (governance/tasks.py), which a `flask worker` process
runs; or the job runs at once in the caller when JOBS_INLINE (the tests). The job claims its
row (only one worker can move it from `queued` to `running`, and each claim is an attempt),
writes its progress under that claim, and checks the claim again before it writes its result.
The row is the truth: a task delivered twice finds the job claimed and does nothing.

A running job beats a heartbeat into its row every JOB_HEARTBEAT_SECONDS. One whose heartbeat
is older than JOB_STALL_SECONDS lost its worker (killed, or its machine went away): whoever next
looks at it (its status page or API, a new request for the same work, the command that runs
queued jobs) or the queue's sweep (every minute) puts it back in the queue, until it has had
JOB_MAX_ATTEMPTS attempts; then it fails, saying so. So a killed job is running again, or
failed, within JOB_STALL_SECONDS plus a minute. A queued job no worker claimed within
JOB_STALL_SECONDS (its message was lost) is put on the queue again by the sweep. A worker that
stops hands its running jobs back to the queue (`hand_back`).
"""

import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import Flask, current_app
from sqlalchemy import String, Text, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.orm.exc import StaleDataError

from . import audit
from .database import utcnow, write_intent, writing
from .extensions import db

WORKING = ("queued", "running")


class Job:
    """Mixin: the columns of a job kept in its row, beside its state column (`JOB_STATE` names
    it), which goes from `queued` to `running`, then `done` or `failed` (or further)."""

    JOB_STATE = "state"
    STALL_SECONDS: float | None = None  # a kind's own JOB_STALL_SECONDS
    # What moves while the job works: not the record's history, so not audited.
    UNAUDITED = frozenset({"progress", "progress_note", "job_token", "heartbeat_at"})

    progress: Mapped[int] = mapped_column(default=0)
    progress_note: Mapped[str | None] = mapped_column(String(200))
    error: Mapped[str | None] = mapped_column(Text)
    job_token: Mapped[str | None] = mapped_column(String(32))
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    heartbeat_at: Mapped[datetime | None]
    # How many times a worker claimed the job since it was last asked for.
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")

    @property
    def job_state(self) -> str:
        return getattr(self, self.JOB_STATE)

    @property
    def is_working(self) -> bool:
        return self.job_state in WORKING


@dataclass(frozen=True)
class Kind:
    """A kind of job: its name in the log, its row's model, who it acts as, and its work
    (work(record_id) claims the row and runs the job; it returns whether this call ran it)."""

    name: str
    model: type[Job]
    actor: audit.Actor
    work: Callable[[int], bool]

    def __post_init__(self):
        KINDS[self.name] = self


KINDS: dict[str, Kind] = {}  # every kind, by name: what a `run-job` task names


# --- running -------------------------------------------------------------------------------


def start(kind: Kind, record_id: int) -> None:
    """Put the job on the task queue (or run it now when JOBS_INLINE); called once the job's
    row is committed. The service that queued the job checked that the queue answers
    (tasks.check_reachable); should it fail between the two, the job stays queued and the
    sweep puts it on the queue again once the queue is back."""
    from . import tasks

    if current_app.config["JOBS_INLINE"]:
        run_queued_job(kind.name, record_id)
        return
    try:
        tasks.enqueue("run-job", kind.name, record_id)
    except tasks.QueueUnavailable:
        current_app.logger.warning("%s %s stays queued until the task queue answers",
                                   kind.name, record_id)


def run_queued_job(kind_name: str, record_id: int) -> bool:
    """Run a job a task names; return whether this call ran it (False: another worker has it,
    or it is no longer queued)."""
    return KINDS[kind_name].work(record_id)


# --- the claim -----------------------------------------------------------------------------


def claim_and_run(kind: Kind, record_id: int, carry_out: Callable[[int, str], None]) -> bool:
    """Claim the queued job and carry it out (`carry_out(record_id, token)`) with its heartbeat
    beating; return whether this call ran it. Every kind's `work` is this."""
    intent = write_intent.set(True)  # a job writes, whatever started it
    try:
        token = claim(kind.model, record_id, kind.actor)
        if token is None:
            return False
        with heartbeat(kind, record_id, token):
            carry_out(record_id, token)
        return True
    finally:
        write_intent.reset(intent)


def claim(model: type[Job], record_id: int, actor: audit.Actor) -> str | None:
    """Move a queued job to running (audited, as done by `actor`) and commit; return the claim's
    token, or None when another worker has it. The row is locked while it is read (SQLite: the
    write transaction; PostgreSQL: FOR UPDATE)."""
    with audit.acting_as(actor):
        job = _locked(model, record_id)
        if job is None or job.is_void or job.job_state != "queued":
            db.session.rollback()
            return None
        token = secrets.token_hex(16)
        setattr(job, model.JOB_STATE, "running")
        job.job_token, job.started_at, job.error = token, utcnow(), None
        job.heartbeat_at = job.started_at
        job.attempts = (job.attempts or 0) + 1
        job.progress, job.progress_note = 1, "Starting"
        db.session.commit()
    return token


def _locked(model: type[Job], record_id: int) -> Job | None:
    return db.session.scalar(select(model).where(model.id == record_id).with_for_update()
                             .execution_options(populate_existing=True))


def held(model: type[Job], record_id: int, token: str) -> Job | None:
    """The job's row, read afresh, if the job with this token still holds it (else None: a job
    started again in its place has it)."""
    job = db.session.get(model, record_id, populate_existing=True)
    return job if job is not None and job.job_token == token else None


# --- progress and the heartbeat ------------------------------------------------------------


def report_progress(model: type[Job], record_id: int, token: str, percent: float,
                    note: str | None, connection) -> bool:
    """Write a job's progress (1 to 99 %; 100 is its result's) and note on `connection` if the
    job still holds its claim; return whether it does. Not audited, and not a new version.
    Progress is a heartbeat too."""
    table = model.__table__
    values = {"progress": max(1, min(99, int(percent))), "heartbeat_at": utcnow()}
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


class Heartbeat:
    """Beats a claimed job's `heartbeat_at` every JOB_HEARTBEAT_SECONDS from a thread of its
    own (the job may spend longer than that in one step), until the job ends or loses its
    claim. This process's live heartbeats are the jobs it would hand back when stopping."""

    def __init__(self, app: Flask, kind: Kind, record_id: int, token: str):
        self.app = app
        self.kind = kind
        self.record_id = record_id
        self.token = token
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._beat, daemon=True,
                                       name=f"{kind.name}-{record_id}-heartbeat")

    def _beat(self) -> None:
        interval = self.app.config["JOB_HEARTBEAT_SECONDS"]
        while not self.stopped.wait(interval):
            with self.app.app_context():
                try:
                    with writing(), db.engine.begin() as connection:
                        alive = _beat_once(self.kind.model, self.record_id, self.token,
                                           connection)
                except OperationalError:
                    self.app.logger.warning("%s %s: heartbeat not recorded", self.kind.name,
                                            self.record_id, exc_info=True)
                    continue
            if not alive:
                return


def _beat_once(model: type[Job], record_id: int, token: str, connection) -> bool:
    table = model.__table__
    result = connection.execute(
        update(table).where(table.c.id == record_id, table.c.job_token == token,
                            table.c[model.JOB_STATE] == "running")
        .values(heartbeat_at=utcnow()))
    return result.rowcount == 1


@contextmanager
def heartbeat(kind: Kind, record_id: int, token: str) -> Iterator[None]:
    """Keep the claimed job's heartbeat beating while the block runs (not when JOBS_INLINE: the
    tests run a job in one go, and its progress beats too)."""
    app = current_app._get_current_object()
    if app.config["JOBS_INLINE"]:
        yield
        return
    beating = Heartbeat(app, kind, record_id, token)
    live = app.extensions.setdefault("job_heartbeats", {})
    live[token] = beating
    beating.thread.start()
    try:
        yield
    finally:
        beating.stopped.set()
        live.pop(token, None)


# --- stalled jobs --------------------------------------------------------------------------


def stopped_responding(attempts: int) -> str:
    times = "once" if attempts == 1 else "twice" if attempts == 2 else f"{attempts} times"
    return (f"The worker running it stopped responding {times} (the server was restarted or "
            "the worker was killed), so it was given up. Start it again.")


def is_stalled(job: Job) -> bool:
    """Whether a running job's heartbeat is older than JOB_STALL_SECONDS (its worker died), or a
    queued job waited as long without a worker claiming it (its task was lost, or no worker
    runs)."""
    stall = timedelta(seconds=job.STALL_SECONDS or current_app.config["JOB_STALL_SECONDS"])
    if job.job_state == "running":
        return utcnow() - (job.heartbeat_at or job.started_at or job.updated_at) > stall
    if job.job_state == "queued":
        return utcnow() - (job.updated_at or job.created_at) > stall
    return False


def recover(job: Job) -> bool:
    """Put a stalled job back in the queue, or fail it once it has had JOB_MAX_ATTEMPTS attempts,
    saying why (audited as the session's actor; not flushed); return whether it now waits for a
    worker. A job that is not stalled is left as it is."""
    if not is_stalled(job):
        return False
    if job.job_state == "queued":
        return True
    name = f"{job.__tablename__} {job.id}"
    if (job.attempts or 0) >= current_app.config["JOB_MAX_ATTEMPTS"]:
        setattr(job, job.JOB_STATE, "failed")
        job.error = stopped_responding(job.attempts)
        job.finished_at = utcnow()
        _release(job, note=None)
        audit.set_reason(job.error)
        current_app.logger.error("%s failed: its worker stopped responding %s times", name,
                                 job.attempts)
        return False
    setattr(job, job.JOB_STATE, "queued")
    _release(job, note="Waiting to start again (the last worker stopped responding)")
    audit.set_reason(f"Queued again: the worker running attempt {job.attempts} stopped "
                     "responding")
    current_app.logger.warning("%s queued again: the worker running attempt %s stopped "
                               "responding", name, job.attempts)
    return True


def _release(job: Job, note: str | None) -> None:
    job.job_token = None
    job.heartbeat_at = None
    job.progress_note = note
    if job.job_state == "queued":
        job.progress = 0
        job.started_at = None


def pick_up(kind: Kind, record_id: int) -> bool:
    """Recover the job if it stalled, in a write transaction of its own with its row locked, and
    commit; return whether it waits for a worker (the caller starts it)."""
    with writing(), audit.acting_as(kind.actor):
        job = _locked(kind.model, record_id)
        waiting = job is not None and not job.is_void and recover(job)
        db.session.commit()
    return waiting


def look_after(kind: Kind, job: Job) -> Job:
    """Whoever shows a job calls this: a running one that stalled is queued again (or failed)
    and put on the task queue; return the job as it is now. (A queued one that waits is the
    sweep's: it would be put on the queue at every look.) Ends the session's transaction when
    it acts."""
    if job.job_state != "running" or not is_stalled(job):
        return job
    record_id = job.id
    db.session.rollback()
    if pick_up(kind, record_id):
        start(kind, record_id)
    return db.session.get(kind.model, record_id, populate_existing=True)


def recover_stalled(kind: Kind) -> list[int]:
    """Recover every stalled job of this kind; return the ids of those that wait for a
    worker."""
    token = write_intent.set(False)  # it only reads: no write lock (SQLite)
    try:
        working = db.session.scalars(select(kind.model).where(
            getattr(kind.model, kind.model.JOB_STATE).in_(WORKING),
            kind.model.voided_at.is_(None))).all()
        stalled = [job.id for job in working if is_stalled(job)]
        db.session.rollback()
    finally:
        write_intent.reset(token)
    return [record_id for record_id in stalled if pick_up(kind, record_id)]


def resume_stalled(kind: Kind) -> int:
    """Recover every stalled job of this kind and start those that wait for a worker; return how
    many were started."""
    waiting = recover_stalled(kind)
    for record_id in waiting:
        start(kind, record_id)
    return len(waiting)


def sweep() -> int:
    """The task queue's periodic sweep: every kind's stalled jobs; return how many started."""
    return sum(resume_stalled(kind) for kind in KINDS.values())


# --- a worker stopping ---------------------------------------------------------------------


def hand_back(app: Flask, wait_seconds: float) -> int:
    """Let this process's running jobs finish for up to `wait_seconds`, then return the others
    to the task queue, each with a log line (its claim ends; another worker starts it); return
    how many were handed back. A stopping task worker calls this (tasks.run_worker)."""
    live = app.extensions.get("job_heartbeats", {})
    deadline = time.monotonic() + wait_seconds
    while live and time.monotonic() < deadline:
        time.sleep(0.1)
    handed = 0
    with app.app_context():
        for beating in list(live.values()):
            beating.stopped.set()
            if _hand_back_one(beating.kind, beating.record_id, beating.token):
                handed += 1
                app.logger.warning("%s %s handed back to the queue: its worker is stopping",
                                   beating.kind.name, beating.record_id)
                start(beating.kind, beating.record_id)
        db.session.remove()
    return handed


def _hand_back_one(kind: Kind, record_id: int, token: str) -> bool:
    try:
        with writing(), audit.acting_as(kind.actor):
            job = _locked(kind.model, record_id)
            if job is None or job.job_token != token or job.job_state != "running":
                db.session.rollback()
                return False  # it finished meanwhile
            setattr(job, job.JOB_STATE, "queued")
            _release(job, note="Waiting for a worker (the last one was stopping)")
            audit.set_reason("Handed back to the queue: the worker running it was stopping")
            db.session.commit()
            return True
    except (StaleDataError, OperationalError):
        db.session.rollback()
        current_app.logger.exception("%s %s could not be handed back; it is started again once "
                                     "its heartbeat is stale", kind.name, record_id)
        return False
