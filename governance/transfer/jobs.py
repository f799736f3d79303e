"""Large imports in the background: a file of more than IMPORT_IN_BACKGROUND_ROWS rows is
imported by the task worker (governance/jobs.py), not in the request that asked for it, with
the same outcome: every row or none, audited as the person who asked. Its page follows it."""

from flask import current_app
from sqlalchemy import select

from .. import audit, storage, tasks
from .. import jobs as background
from ..auth.models import User
from ..database import utcnow, writing
from ..errors import Conflict
from ..extensions import db
from ..permissions import can_import, require
from .imports import FileRefused, import_file
from .models import ImportRun

JOB_ACTOR = audit.Actor(None, "import job")


def row_count(data: bytes) -> int:
    """About how many rows a CSV file holds (its lines, without the header)."""
    return max(data.count(b"\n") - 1, 0) + (0 if data.endswith(b"\n") else 1)


def in_background(data: bytes) -> bool:
    return row_count(data) > current_app.config["IMPORT_IN_BACKGROUND_ROWS"]


def request_import(kind: str, digest: str, filename: str, data: bytes, actor) -> ImportRun:
    """Queue the import of an uploaded file; flush, not commit. Refused while the same upload
    is already being imported."""
    require(can_import, actor)
    working = db.session.scalar(select(ImportRun).where(
        ImportRun.sha256 == digest, ImportRun.kind == kind,
        ImportRun.requested_by_id == actor.id, ImportRun.state.in_(background.WORKING)))
    if working is not None:
        raise Conflict(f"{filename} is already being imported: follow it on its page.")
    tasks.check_reachable()
    audit.set_actor(actor)
    audit.set_reason(f"Import of {filename} queued")
    run = ImportRun(kind=kind, sha256=digest, filename=filename, rows=row_count(data),
                    requested_by_id=actor.id, state="queued", progress_note="Waiting")
    db.session.add(run)
    db.session.flush()
    return run


def visible_run(run_id: int, user) -> ImportRun | None:
    """The run, to the person who asked for it only (as their upload is theirs)."""
    run = db.session.get(ImportRun, run_id)
    return run if run is not None and run.requested_by_id == user.id else None


def is_stalled(run: ImportRun) -> bool:
    return background.is_stalled(run)


def look_after(run: ImportRun) -> ImportRun:
    return background.look_after(KIND, run)


def status_json(run: ImportRun) -> dict:
    return {"id": run.id, "status": run.state, "progress": run.progress,
            "progress_note": run.progress_note, "summary": run.summary, "error": run.error,
            "stalled": is_stalled(run)}


def start(run_id: int) -> None:
    background.start(KIND, run_id)


def run_job(run_id: int) -> bool:
    """Claim the queued import and carry it out; return whether this call ran it."""
    return background.claim_and_run(KIND, run_id, _run_claimed)


KIND = background.Kind("import job", ImportRun, JOB_ACTOR, run_job)


def _run_claimed(run_id: int, token: str) -> None:
    run = db.session.get(ImportRun, run_id)
    kind, digest, filename, rows = run.kind, run.sha256, run.filename, run.rows
    actor = db.session.get(User, run.requested_by_id)
    db.session.rollback()
    background.Progress(ImportRun, run_id, token)(10, f"Importing {rows:,} rows")
    try:
        report = import_file(kind, storage.IMPORTS.read(digest), actor, filename=filename,
                             digest=digest, commit=True)
    except (FileRefused, storage.MissingFile) as error:
        db.session.rollback()
        _finish(run_id, token, "failed", error=f"Nothing was imported: {error}")
        return
    except Exception as error:
        db.session.rollback()
        current_app.logger.exception("import job %s failed", run_id)
        _finish(run_id, token, "failed", error=f"Nothing was imported: {type(error).__name__}: "
                                               f"{str(error)[:300]} (details in the server log)")
        return
    if not report.committed:
        first = "; ".join(f"row {p.row}, {p.column}: {p.message}" for p in report.problems[:3])
        _finish(run_id, token, "failed", error=(
            f"Nothing was imported: {len(report.problems)} problem(s) since the preview "
            f"({first}). Open the preview again to see them all."))
        return
    _finish(run_id, token, "done", created=report.created, updated=report.updated,
            unchanged=report.unchanged,
            summary=f"Imported {filename}: {report.created} created, {report.updated} "
                    f"updated, {report.unchanged} unchanged.")


def _finish(run_id: int, token: str, state: str, **values) -> None:
    with writing(), audit.acting_as(JOB_ACTOR):
        run = background.held(ImportRun, run_id, token)
        if run is None:
            db.session.rollback()
            return
        run.state, run.progress_note, run.finished_at = state, None, utcnow()
        run.progress = 100
        for name, value in values.items():
            setattr(run, name, value)
        audit.set_reason(values.get("summary") or values.get("error", "")[:500])
        db.session.commit()
