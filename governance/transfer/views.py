"""Pages to import CSV files (upload, preview, commit) and to export the lists as CSV or XLSX."""

import hashlib
from datetime import date

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask_login import current_user
from werkzeug.exceptions import RequestEntityTooLarge

from ..database import writes_on_get
from ..errors import DomainError
from ..extensions import db
from ..forms import int_data
from ..interactions.forms import InteractionFilterForm
from ..interactions.services import InteractionFilter
from ..partnerships.forms import PartnershipFilterForm, SupportFilterForm
from ..partnerships.services import PartnershipFilter, SupportFilter
from ..permissions import allow, can_export, can_export_audit_trail, can_import
from . import csvfile, exports
from . import jobs as import_jobs
from .csvfile import FileRefused, human_size
from .imports import IMPORTERS, import_file

bp = Blueprint("transfer", __name__)
PROBLEMS_SHOWN = 1000


# --- import ---------------------------------------------------------------------------------


def _importer_or_404(kind: str):
    importer = IMPORTERS.get(kind)
    if importer is None:
        abort(404)
    return importer


def _upload_page(error: str | None = None, status: int = 200, kind: str | None = None):
    return render_template("transfer/upload.html", importers=IMPORTERS, error=error,
                           chosen=kind or request.args.get("kind") or "interactions",
                           limit=human_size(current_app.config["IMPORT_MAX_BYTES"])), status


@bp.route("/imports/", methods=["GET", "POST"])
@allow(can_import)
def upload():
    """Choose what to import and upload the file; the answer is its preview."""
    if request.method == "GET":
        return _upload_page()
    kind = request.form.get("kind", "")
    if kind not in IMPORTERS:
        return _upload_page("Choose what the file holds.", 422)
    upload_file = request.files.get("file")
    if upload_file is None or not upload_file.filename:
        return _upload_page("Choose a CSV file to upload.", 422, kind)
    filename = upload_file.filename.rsplit("/", 1)[-1][:200]
    try:
        data = csvfile.read_upload(upload_file.stream, current_app.config["IMPORT_MAX_BYTES"])
        digest = hashlib.sha256(data).hexdigest()
        report = import_file(kind, data, current_user, filename=filename, digest=digest,
                             commit=False)
    except FileRefused as refusal:
        return _upload_page(refusal.message, refusal.status, kind)
    finally:
        upload_file.close()  # a large upload is spooled to a temporary file
    csvfile.store(data, filename, current_user)
    db.session.commit()
    return _preview_page(kind, digest, report)


@bp.errorhandler(RequestEntityTooLarge)
def upload_too_large(_error):
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    return _upload_page(f"The upload is larger than the {human_size(limit)} any request may "
                        f"carry (imports take files of up to "
                        f"{human_size(current_app.config['IMPORT_MAX_BYTES'])}). Nothing was "
                        "imported: split the file into smaller ones.", 413)


def _stored_or_404(digest: str) -> tuple[bytes, str]:
    """The file the current user uploaded under this hash, and its name (another user's upload
    answers as unknown)."""
    stored = csvfile.load(digest, current_user)
    if stored is None:
        abort(404, "This upload is no longer kept. Upload the file again.")
    data, upload = stored
    return data, upload.filename


def _preview_page(kind: str, digest: str, report, status: int | None = None):
    return render_template(
        "transfer/preview.html", importer=IMPORTERS[kind], digest=digest, report=report,
        problems=report.problems[:PROBLEMS_SHOWN], shown=PROBLEMS_SHOWN,
    ), status or (200 if report.ok else 422)


@bp.route("/imports/<kind>/<digest>")
@writes_on_get  # the preview runs the import and rolls it back
@allow(can_import)
def preview(kind: str, digest: str):
    """Check every row of an uploaded file again and show what importing it would do."""
    _importer_or_404(kind)
    data, filename = _stored_or_404(digest)
    try:
        report = import_file(kind, data, current_user, filename=filename,
                             digest=digest, commit=False)
    except FileRefused as refusal:
        return _upload_page(refusal.message, refusal.status, kind)
    return _preview_page(kind, digest, report)


@bp.route("/imports/<kind>/<digest>/commit", methods=["POST"])
@allow(can_import)
def commit(kind: str, digest: str):
    """Import exactly the previewed file (named by its hash): every row, or none."""
    importer = _importer_or_404(kind)
    data, filename = _stored_or_404(digest)
    if import_jobs.in_background(data):
        return _import_in_background(kind, digest, filename, data)
    try:
        report = import_file(kind, data, current_user, filename=filename,
                             digest=digest, commit=True)
    except FileRefused as refusal:
        return _upload_page(refusal.message, refusal.status, kind)
    if not report.committed:
        return _preview_page(kind, digest, report, 422)
    flash(f"Imported {filename}: {report.created} created, "
          f"{report.updated} updated, {report.unchanged} unchanged.", "success")
    return redirect(url_for(importer.list_endpoint), 303)


def _import_in_background(kind: str, digest: str, filename: str, data: bytes):
    try:
        run = import_jobs.request_import(kind, digest, filename, data, current_user)
    except DomainError as error:
        db.session.rollback()
        flash(f"{filename} was not imported: {error.message}", "danger")
        return redirect(url_for(".preview", kind=kind, digest=digest), 303)
    db.session.commit()
    import_jobs.start(run.id)
    flash(f"{filename} is being imported ({run.rows:,} rows). This page shows the progress.",
          "info")
    return redirect(url_for(".import_run", import_id=run.id), 303)


def _visible_run_or_404(import_id: int):
    run = import_jobs.visible_run(import_id, current_user)
    if run is None:
        abort(404)
    return import_jobs.look_after(run)


@bp.route("/imports/runs/<int:import_id>")
@allow(can_import)
def import_run(import_id: int):
    """A large import run by the task worker: its progress, then its outcome."""
    run = _visible_run_or_404(import_id)
    return render_template("transfer/run.html", run=run, importer=IMPORTERS[run.kind],
                           stalled=import_jobs.is_stalled(run))


@bp.route("/imports/runs/<int:import_id>/status")
@allow(can_import)
def import_run_status(import_id: int):
    response = jsonify(import_jobs.status_json(_visible_run_or_404(import_id)))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/imports/<kind>/<digest>/problems.csv")
@writes_on_get  # the problems come from running the import and rolling it back
@allow(can_import)
def problems_csv(kind: str, digest: str):
    """Every problem of the file, for fixing it in a spreadsheet."""
    _importer_or_404(kind)
    data, filename = _stored_or_404(digest)
    try:
        report = import_file(kind, data, current_user, filename=filename,
                             digest=digest, commit=False)
    except FileRefused as refusal:
        return _upload_page(refusal.message, refusal.status, kind)
    table = exports.Table("problems", "Problems", ["row", "column", "problem"],
                          ([p.row, p.column, p.message] for p in report.problems))
    return _download(table, "csv")


@bp.route("/imports/<kind>/template.csv")
@allow(can_import)
def template(kind: str):
    """The columns to fill in, with one example row."""
    importer = _importer_or_404(kind)
    body = csvfile.template_csv(importer.columns(), importer.example)
    return Response("\ufeff" + body, mimetype="text/csv", headers={
        "Content-Disposition": f"attachment; filename={kind}-template.csv"})


# --- export ---------------------------------------------------------------------------------


def _download(table: exports.Table, fmt: str) -> Response:
    filename = f"{table.name}-{date.today().isoformat()}.{fmt}"
    disposition = {"Content-Disposition": f"attachment; filename={filename}"}
    if fmt == "xlsx":
        return Response(exports.xlsx_bytes(table), headers=disposition, mimetype=(
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"))
    return Response(stream_with_context(exports.csv_chunks(table)), headers=disposition,
                    mimetype="text/csv")


def _sort() -> str:
    return request.args.get("sort", "")


@bp.route("/exports/interactions.<any(csv, xlsx):fmt>")
@allow(can_export)
def export_interactions(fmt: str):
    """The interactions the list shows for the same filters, with their flags."""
    form = InteractionFilterForm(request.args)
    form.partnership_id.choices = form.organisation_id.choices = []
    form.validate()
    criteria = InteractionFilter(
        partnership_id=int_data(form.partnership_id),
        organisation_id=int_data(form.organisation_id),
        date_from=None if form.date_from.errors else form.date_from.data,
        date_to=None if form.date_to.errors else form.date_to.data,
        format=form.format.data, q=form.q.data, rule=request.args.get("rule") or None,
        state=request.args.get("state") or None, sort=_sort() or "-occurred_on",
    )
    return _download(exports.interactions_table(current_user, criteria), fmt)


@bp.route("/exports/partnerships.<any(csv, xlsx):fmt>")
@allow(can_export)
def export_partnerships(fmt: str):
    """The partnerships the list shows for the same filters, with their flags."""
    form = PartnershipFilterForm(request.args)
    form.organisation_id.choices = []
    form.validate()
    criteria = PartnershipFilter(status=form.status.data, kind=form.kind.data,
                                 organisation_id=int_data(form.organisation_id), q=form.q.data,
                                 sort=_sort() or "title")
    return _download(exports.partnerships_table(current_user, criteria), fmt)


@bp.route("/exports/supports.<any(csv, xlsx):fmt>")
@allow(can_export)
def export_supports(fmt: str):
    """The support entries the list shows for the same filters."""
    form = SupportFilterForm(request.args)
    form.partnership_id.choices = form.recipient_id.choices = form.year.choices = []
    form.validate()
    criteria = SupportFilter(partnership_id=int_data(form.partnership_id),
                             recipient_id=int_data(form.recipient_id), year=int_data(form.year),
                             kind=form.kind.data, confirmation=form.confirmation.data,
                             sort=_sort() or "-paid_on")
    return _download(exports.supports_table(current_user, criteria), fmt)


@bp.route("/exports/agreements.<any(csv, xlsx):fmt>")
@allow(can_export)
def export_agreements(fmt: str):
    """The agreements the user may see (of one partnership with `partnership_id`)."""
    from ..agreements.services import AgreementFilter

    criteria = AgreementFilter(partnership_id=request.args.get("partnership_id", type=int))
    return _download(exports.agreements_table(current_user, criteria), fmt)


@bp.route("/exports/audit.<any(csv, xlsx):fmt>")
@allow(can_export_audit_trail)
def export_audit(fmt: str):
    """The audit events the audit trail shows for the same filters, oldest first."""
    from ..auditing.services import AuditFilter, events_matching

    events = events_matching(AuditFilter.from_args(request.args), current_user)
    return _download(exports.audit_table(events), fmt)
