"""Re-evaluating every record in the background, as the review queue's button asks.

At a million interactions a full re-evaluation takes minutes: longer than a request may run,
and longer than other writers can wait for SQLite's write lock. So the button queues a run
(state `queued`) and commits; a task worker claims it (governance/jobs.py), then re-checks
the records batch by batch, committing each batch with its flags, their audit events and the
run's progress, so the application's other writes get their turn in between. A batch is all or
nothing; a failure records why and the batches before it stay (each of them is a correct
evaluation of its records: running again completes the rest).
"""

from flask import current_app
from sqlalchemy import select

from .. import audit, tasks
from .. import jobs as background
from ..database import utcnow
from ..errors import Conflict
from ..extensions import db
from ..permissions import acts_for, can_manage_policy, require
from .engine import load_policy
from .models import ReevaluationRun

JOB_ACTOR = audit.Actor(None, "re-evaluation job")
TAKEN_OVER = "This re-evaluation was taken over by another job."


def request_reevaluation(actor) -> ReevaluationRun:
    """Queue a re-evaluation of every record; flush, not commit.

    Refused while another one is queued or running. One whose worker stopped responding is
    answered instead, queued again (the caller starts it), or marked failed after its last
    attempt (governance/jobs.py) and replaced by a new one. Raises PolicyError, and queues
    nothing, when the policy files are not valid.
    """
    require(can_manage_policy, actor)
    load_policy(current_app.config["POLICIES_DIR"])
    tasks.check_reachable()
    for run in db.session.scalars(select(ReevaluationRun).where(
            ReevaluationRun.state.in_(background.WORKING))):
        if background.recover(run):
            db.session.flush()
            return run
        if run.is_working:
            who = run.requested_by.name if acts_for(actor, run.requested_by.organisation_id) \
                else "another organisation"
            raise Conflict(f"A re-evaluation asked for by {who} at "
                           f"{run.created_at:%Y-%m-%d %H:%M} UTC is still "
                           f"{'waiting to start' if run.state == 'queued' else 'running'}.")
    run = ReevaluationRun(requested_by_id=actor.id, state="queued", progress_note="Waiting")
    db.session.add(run)
    db.session.flush()
    return run


def is_stalled(run: ReevaluationRun) -> bool:
    """Whether the run lost its worker (governance/jobs.py)."""
    return background.is_stalled(run)


def look_after(run: ReevaluationRun) -> ReevaluationRun:
    """Start a stalled run again (governance/jobs.py); return the run as it is now."""
    return background.look_after(KIND, run)


def status_json(run: ReevaluationRun) -> dict:
    return {"id": run.id, "status": run.state, "progress": run.progress,
            "progress_note": run.progress_note, "summary": run.summary, "error": run.error,
            "stalled": is_stalled(run)}


def start(run_id: int) -> None:
    """Run the re-evaluation in the background (governance/jobs.py)."""
    background.start(KIND, run_id)


def run_job(run_id: int) -> bool:
    """Claim the queued run and carry it out; return whether this call ran it."""
    return background.claim_and_run(KIND, run_id, _run_claimed)


def _run_claimed(run_id: int, claimed: str) -> None:
    from .bulk import gc_paused, reevaluate_all

    def committed(done: int, total: int) -> None:
        # The progress is committed with the batch, and only while this job holds the run.
        if not background.report_progress(
                ReevaluationRun, run_id, claimed, done * 100 // max(total, 1),
                f"{done:,} of {total:,} records checked", db.session.connection()):
            raise Conflict(TAKEN_OVER)
        db.session.commit()

    try:
        with audit.acting_as(JOB_ACTOR):
            with gc_paused():
                result = reevaluate_all(after_batch=committed)
            _record(run_id, claimed, state="done", progress=100, progress_note=None,
                    policy_version=result.policy_version, summary=result.summary(),
                    finished_at=utcnow())
            db.session.commit()
    except Exception as error:
        db.session.rollback()
        current_app.logger.exception("re-evaluation %s failed", run_id)
        with audit.acting_as(JOB_ACTOR):
            _record(run_id, claimed, state="failed", progress_note=None,
                    error=_readable(error), finished_at=utcnow())
            db.session.commit()


KIND = background.Kind("re-evaluation", ReevaluationRun, JOB_ACTOR, run_job)


def _record(run_id: int, claim: str, **values) -> None:
    """Change the run's row (audited), if this job still holds it."""
    run = background.held(ReevaluationRun, run_id, claim)
    if run is None:
        raise Conflict(TAKEN_OVER)
    for name, value in values.items():
        setattr(run, name, value)


def _readable(error: Exception) -> str:
    from ..errors import DomainError
    from .engine import PolicyError

    if isinstance(error, PolicyError):
        return "The policy files are not valid: " + "; ".join(str(p) for p in error.problems)
    if isinstance(error, DomainError):
        return error.message
    return (f"{type(error).__name__}: {str(error).strip()[:500]} (details are in the server "
            "log). The records checked before it keep their new flags; start it again to "
            "check the rest.")


def reevaluate_when_in_force(version, actor) -> str:
    """After a policy version was put in force (and committed): re-judge every record now if it
    is in force today, and say so; from a later date, the day's run does it on that date."""
    from ..errors import DomainError
    from .engine import PolicyError

    if version.effective_from > utcnow().date():
        return "The day's run re-evaluates every record under it on that date."
    try:
        run = request_reevaluation(actor)
    except (DomainError, PolicyError) as error:
        db.session.rollback()
        return f"The day's run re-evaluates every record under it ({error})."
    db.session.commit()
    start(run.id)
    return "Every record is being re-evaluated under it now."
