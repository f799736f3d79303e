"""The day's run: the work that depends on the date, done once a day by the task queue.

The queue's `daily` task looks every ten minutes; from DAILY_RUN_HOUR (UTC) the first look
writes the day's row (`DailyRun`, one per date: the database refuses a second), and the worker
that claims it (governance/jobs.py) does the day. Two workers never do the day twice, a worker
killed mid-run is replaced as any job's is, and each step is safe to do again (reminders carry
a key: a user gets each once).

The steps: re-evaluate every record (the rules that count days: documentation deadlines,
transactional partnerships, agreements that lapse) and tell each advocate of the flags raised on
their interactions; remind of summaries and feedback due within DOCUMENTATION_REMINDER_DAYS; of
reports due within the reporting reminder period or overdue; of a policy past its review date;
then send the daily digests.
"""

from datetime import date, datetime

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import Date, String, Text, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from . import audit
from . import jobs as background
from .database import utcnow, writing
from .extensions import db
from .records import Record

JOB_ACTOR = audit.Actor(None, "daily run")


class DailyRun(Record, background.Job, db.Model):
    __tablename__ = "daily_runs"

    day: Mapped[date] = mapped_column(Date, unique=True)
    state: Mapped[str] = mapped_column(String(10), default="queued")
    summary: Mapped[str | None] = mapped_column(Text)


# --- starting the day ----------------------------------------------------------------------


def start_if_due(now: datetime | None = None) -> DailyRun | None:
    """Do the day's run if it is due and nobody did it; return the run when this call ran
    it."""
    now = now or utcnow()
    if now.hour < current_app.config["DAILY_RUN_HOUR"]:
        return None
    run_id = the_days_run(now.date())
    return db.session.get(DailyRun, run_id) if run_job(run_id) else None


def the_days_run(day: date) -> int:
    with writing(), audit.acting_as(JOB_ACTOR):
        found = db.session.scalar(select(DailyRun.id).where(DailyRun.day == day))
        if found is not None:
            db.session.rollback()
            return found
        run = DailyRun(day=day, state="queued", progress_note="Waiting")
        try:
            with db.session.begin_nested():
                db.session.add(run)
        except IntegrityError:  # another worker wrote it a moment ago
            db.session.rollback()
            return db.session.scalar(select(DailyRun.id).where(DailyRun.day == day))
        db.session.commit()
        return run.id


def run_job(run_id: int) -> bool:
    """Claim the day's run and do it; return whether this call did."""
    return background.claim_and_run(KIND, run_id, _run_claimed)


KIND = background.Kind("daily run", DailyRun, JOB_ACTOR, run_job)


def _run_claimed(run_id: int, token: str) -> None:
    day = db.session.get(DailyRun, run_id).day
    db.session.rollback()
    progress = background.Progress(DailyRun, run_id, token)
    done = []
    try:
        with audit.acting_as(JOB_ACTOR):
            for percent, step in ((5, _reevaluate), (60, _documentation_reminders),
                                  (75, _report_reminders), (85, _policy_review),
                                  (90, _digests)):
                progress(percent, step.__doc__.splitlines()[0])
                done.append(step(day))
                db.session.commit()
        _finish(run_id, token, "done", summary="; ".join(done) + ".")
    except Exception as error:
        db.session.rollback()
        current_app.logger.exception("daily run %s failed", day)
        _finish(run_id, token, "failed", error=f"{type(error).__name__}: {error}"[:1000],
                summary="; ".join(done) or None)


def _finish(run_id: int, token: str, state: str, **values) -> None:
    with writing(), audit.acting_as(JOB_ACTOR):
        run = background.held(DailyRun, run_id, token)
        if run is None:
            db.session.rollback()
            return
        run.state, run.progress, run.progress_note = state, 100, None
        run.finished_at = utcnow()
        for name, value in values.items():
            setattr(run, name, value)
        audit.set_reason(f"Daily run {state}")
        db.session.commit()


# --- the steps -----------------------------------------------------------------------------


def _reevaluate(day: date) -> str:
    """Re-evaluating every record for today's date"""
    from .notifications.events import flags_raised_since
    from .rules.bulk import gc_paused, reevaluate_all

    started = utcnow()
    with writing(), gc_paused():
        result = reevaluate_all(today=day, after_batch=lambda _done, _total: db.session.commit())
    told = flags_raised_since(started, day)
    return f"{result.summary().rstrip('.')}; {told} advocate(s) told of new flags"


def _documentation_reminders(day: date) -> str:
    """Reminding of summaries and feedback due soon"""
    from .notifications.events import documentation_due

    with writing():
        return f"{documentation_due(day)} documentation reminder(s)"


def _report_reminders(day: date) -> str:
    """Reminding of transparency reports due"""
    from .notifications.events import reports_due

    with writing():
        return f"{reports_due(day)} report reminder(s)"


def _policy_review(day: date) -> str:
    """Checking the policy's review date"""
    from .notifications.events import policy_review_due

    with writing():
        return f"{policy_review_due(day)} policy review notice(s)"


def _digests(day: date) -> str:
    """Sending the daily digests"""
    from .notifications.mail import deliver_digests

    return f"{deliver_digests()} digest(s) mailed"


# --- the command ---------------------------------------------------------------------------


@click.command("daily-run")
@with_appcontext
@click.option("--day", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="The day to run for (default: today, UTC).")
def daily_run_command(day):
    """Do the day's run now (once per day: a day already done is not done again)."""
    when = day.replace(hour=23) if day else utcnow()
    run_id = the_days_run(when.date())
    ran = run_job(run_id)
    run = db.session.get(DailyRun, run_id, populate_existing=True)
    if not ran:
        click.echo(f"The run of {run.day} is {run.state}; it was not done again.")
        return
    click.echo(f"Daily run of {run.day}: {run.state}. {run.summary or ''} {run.error or ''}")
    if run.state == "failed":
        raise SystemExit(1)

