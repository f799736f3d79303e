"""Report jobs: run outside the request that asked for them, with their state in the database.

A request queues the job (status `queued`) and commits, then puts it on the task queue; a task
worker claims the job (governance/jobs.py: only one worker moves it from `queued` to `running`),
while every web worker can serve its status page. Everything the job
reads is one consistent snapshot; files are stored before the row points at them; a failure
records why and leaves the last good state (nothing is half-published).
"""

import gc
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

import click
from flask import current_app
from sqlalchemy import select

from .. import audit, storage
from .. import jobs as background
from ..database import utcnow, write_intent
from ..extensions import db
from .artefacts import build_artefacts, estimated_pages, snapshot_from_json
from .models import Report
from .services import gather_snapshot, with_approval

JOB_ACTOR = audit.Actor(None, "report job")


def start(report_id: int) -> None:
    """Run the report's job in the background (governance/jobs.py)."""
    background.start(KIND, report_id)


def look_after(report: Report) -> Report:
    """Start a stalled job again (governance/jobs.py); return the report as it is now."""
    return background.look_after(KIND, report)


@contextmanager
def _writing(intent: bool):
    token = write_intent.set(intent)
    try:
        yield
    finally:
        write_intent.reset(token)


def claim(report_id: int) -> str | None:
    """Move a queued job to running; return its token, or None if another worker has it."""
    with _writing(True):
        return background.claim(Report, report_id, JOB_ACTOR)


@dataclass(frozen=True)
class JobResult:
    stored: dict[tuple[str, str], storage.StoredFile]  # by (document, kind)
    pages: dict[str, int]  # by document
    generated_at: datetime | None = None
    methodology_note: str | None = None
    published_at: datetime | None = None
    audit_head: audit.Head | None = None


def run_job(report_id: int) -> bool:
    """Claim and run one job; return whether this call ran it."""
    return background.claim_and_run(KIND, report_id, _run_claimed)


def _run_claimed(report_id: int, token: str) -> None:
    progress = background.Progress(Report, report_id, token)
    try:
        with _writing(False):
            _repeatable_read()
            report = db.session.get(Report, report_id, populate_existing=True)
            with db.session.no_autoflush:
                snapshot, result = (_publishing_snapshot(report) if report.job == "publish"
                                    else _draft_snapshot(report, progress))
            db.session.rollback()  # end the read snapshot: nothing was written in it
        stored, pages = _render_and_store(snapshot, progress)
        _finish(report_id, token, JobResult(stored, pages, **result))
    except Exception as error:
        db.session.rollback()
        current_app.logger.exception("report job %s failed", report_id)
        _record_failure(report_id, token, error)


KIND = background.Kind("report job", Report, JOB_ACTOR, run_job)


def _draft_snapshot(report: Report, progress: background.Progress) -> tuple[dict, dict]:
    generated_at = utcnow().replace(microsecond=0)
    note = report.organisation.methodology_note
    snapshot = gather_snapshot(report, generated_at, note, progress)
    return snapshot, {"generated_at": generated_at, "methodology_note": note}


def _publishing_snapshot(report: Report) -> tuple[dict, dict]:
    draft = snapshot_from_json(storage.REPORTS.read(report.snapshot_sha256))
    published_at = utcnow().replace(microsecond=0)
    head = audit.chain_head()
    return (with_approval(draft, report, published_at, head),
            {"published_at": published_at, "audit_head": head})


def _render_and_store(snapshot: dict, progress: background.Progress
                      ) -> tuple[dict[tuple[str, str], storage.StoredFile], dict[str, int]]:
    progress(30, "Writing the pages")
    expected = estimated_pages(snapshot)

    furthest = [0]

    def on_page(page: int) -> None:
        # WeasyPrint lays the pages out again when page references change ("page 3 of N"):
        # report only pages not seen before.
        if page > furthest[0]:
            furthest[0] = page
            progress(35 + 55 * min(page, expected) // expected, f"Laying out page {page}")

    # What the job holds now lives until the end: keep the garbage collector from walking it
    # again and again while WeasyPrint makes its millions of short-lived objects.
    gc.collect()
    gc.freeze()
    try:
        artefacts = build_artefacts(snapshot, on_page=on_page)
    finally:
        gc.unfreeze()
    progress(93, "Storing the files")
    stored = {(name, kind): storage.REPORTS.store(content)
              for name, document in artefacts.by_document().items()
              for kind, content in document.by_kind().items()}
    return stored, {name: document.pages for name, document in artefacts.by_document().items()}


def _finish(report_id: int, token: str, result: JobResult) -> None:
    with _writing(True), audit.acting_as(JOB_ACTOR):
        report = background.held(Report, report_id, token)
        if report is None or report.status != "running":
            db.session.rollback()
            current_app.logger.warning("report job %s lost its claim; result discarded",
                                       report_id)
            return
        for (document, kind), stored_file in result.stored.items():
            report.keep_file(document, kind, stored_file.sha256, stored_file.size)
        report.page_count = result.pages["public"]
        report.internal_page_count = result.pages["internal"]
        report.progress = 100
        report.progress_note = None
        report.finished_at = utcnow()
        report.error = None
        if result.published_at is not None:
            report.status = "published"
            report.published_at = result.published_at
            audit.set_reason(f"Published: {report.signature_meaning}")
            audit.write_checkpoint("report-published", result.audit_head)
        else:
            report.status = "done"
            report.generated_at = result.generated_at
            report.methodology_note = result.methodology_note
            audit.set_reason("Draft generated")
        db.session.commit()


def _record_failure(report_id: int, token: str, error: Exception) -> None:
    message = readable(error)
    with _writing(True), audit.acting_as(JOB_ACTOR):
        report = background.held(Report, report_id, token)
        if report is None:
            db.session.rollback()
            return
        report.finished_at = utcnow()
        report.progress_note = None
        if report.job == "publish":
            # The reviewed draft stays as it was; the signature is withdrawn with the attempt.
            report.status = "done"
            report.job = "generate"
            report.error = f"Publishing failed, so the report was not published: {message}"
            report.signed_by_id = None
            report.signature_name = None
            report.signature_meaning = None
            report.signed_at = None
        else:
            report.status = "failed"
            report.error = f"The report could not be generated: {message}"
        audit.set_reason(report.error[:500])
        db.session.commit()


def readable(error: Exception) -> str:
    from ..errors import DomainError

    if isinstance(error, DomainError):
        return error.message
    if isinstance(error, storage.MissingFile):
        return f"a stored file is missing or damaged ({error})."
    text = str(error).strip() or type(error).__name__
    return f"{type(error).__name__}: {text[:500]} (details are in the server log)."


def _repeatable_read() -> None:
    """On PostgreSQL read the year in one snapshot (a SQLite transaction already is one)."""
    if db.engine.dialect.name == "postgresql":
        db.session.connection(execution_options={"isolation_level": "REPEATABLE READ"})


def run_queued() -> int:
    """Run every queued job now, one after the other, and those whose worker stopped
    responding (queued again, or failed after their last attempt); return how many this
    process ran."""
    background.recover_stalled(KIND)
    ran = 0
    while True:
        with _writing(False):
            report_id = db.session.scalar(
                select(Report.id).where(Report.status == "queued", Report.voided_at.is_(None))
                .order_by(Report.id).limit(1))
            db.session.rollback()
        if report_id is None:
            return ran
        if run_job(report_id):
            ran += 1


@click.command("run-report-jobs")
def run_report_jobs_command():
    """Run the queued report jobs now (e.g. after a restart interrupted them)."""
    ran = run_queued()
    click.echo(f"Ran {ran} report job{'s' if ran != 1 else ''}.")
