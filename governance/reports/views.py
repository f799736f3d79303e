"""Pages of the transparency reports: generate, follow, review, sign and publish; and the
public list."""

from flask import (
    Blueprint,
    Flask,
    abort,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user
from sqlalchemy import select

from ..database import utcnow
from ..errors import DomainError
from ..extensions import db
from ..forms import attach_errors, form_status, options
from ..organisations.models import Organisation
from ..permissions import (
    acting_organisation_ids,
    allow,
    can_make_reports,
    can_read_reports,
    can_reconcile_funding,
    can_write_methodology,
    public,
    report_scope,
    visible_or_404,
)
from . import due, exceptions, jobs, services
from .artefacts import template_context
from .downloads import document_links, file_response, report_links, stored_bytes
from .forms import BrandingForm, MethodologyForm, PublishForm, ReportRequestForm, parsed_rates
from .models import Report, side_of
from .presentation import register_filters
from .public import signatory
from .reconciliation import reconcile

bp = Blueprint("reports", __name__, url_prefix="/reports")
public_bp = Blueprint("public_reports", __name__, url_prefix="/public/reports")


# --- loading --------------------------------------------------------------------------------------


def load_report(report_id: int) -> Report:
    """A report of the organisations the current user acts for, or 404."""
    report = visible_or_404(Report, report_id, report_scope)
    if report.is_void:
        abort(404)
    return report


def load_job(report_id: int) -> Report:
    """load_report, the job started again first if its worker died (whoever looks notices)."""
    return jobs.look_after(load_report(report_id))


def load_published(report_id: int) -> Report:
    """A published report, or 404: nothing unpublished is reachable from the public pages."""
    report = db.session.get(Report, report_id)
    if report is None or report.is_void or not report.is_published:
        abort(404)
    return report


def stored_snapshot(report: Report) -> dict:
    """The frozen snapshot of the data: the internal governance report's JSON."""
    from .artefacts import snapshot_from_json

    document = "internal" if report.internal_json_sha256 else "public"
    return snapshot_from_json(stored_bytes(report, "json", document))


def stored_public_document(report: Report) -> dict:
    """The public disclosure as stored (derived again for reports from before there were two
    documents, whose one JSON was the whole snapshot)."""
    from .artefacts import snapshot_from_json
    from .public import PUBLIC_SCHEMA, public_document

    stored = snapshot_from_json(stored_bytes(report, "json"))
    return stored if stored.get("schema") == PUBLIC_SCHEMA else public_document(stored)


# --- the list and asking for a report -------------------------------------------------------------


def reporting_organisations() -> list[Organisation]:
    """The organisations whose reports the current user reads (and, for a compliance officer,
    makes): their own, and an auditor's granted ones."""
    organisations = acting_organisation_ids(current_user)
    query = select(Organisation).where(Organisation.voided_at.is_(None))
    if organisations is not None:
        query = query.where(Organisation.id.in_(organisations))
    return db.session.scalars(query.order_by(Organisation.name)).all()


def report_list_page(form: ReportRequestForm, status: int = 200):
    reports = services.reports_for(current_user, request.args.get("organisation_id", type=int),
                                   request.args.get("year", type=int))
    organisations = reporting_organisations()
    return render_template("reports/index.html", form=form, reports=reports,
                           organisations=organisations,
                           missing_topics=services.missing_methodology_topics,
                           due_years=due.due_years(organisations, utcnow().date())), status


def prepare_request_form(form: ReportRequestForm) -> ReportRequestForm:
    form.organisation_id.choices = options(
        [(organisation.id, organisation.name) for organisation in reporting_organisations()
         if can_make_reports(current_user, organisation.id)])
    this_year = utcnow().year
    form.year.choices = options([(year, str(year)) for year in range(this_year, 1999, -1)])
    if request.method == "GET" and form.year.data is None:
        form.year.data = this_year - 1
    return form


@bp.route("/")
@allow(can_read_reports)
def index():
    return report_list_page(prepare_request_form(ReportRequestForm()))


@bp.route("/", methods=["POST"])
@allow(can_make_reports)
def create():
    form = prepare_request_form(ReportRequestForm())
    if form.validate_on_submit():
        try:
            report = services.request_report(
                {"organisation_id": form.organisation_id.data, "year": form.year.data,
                 "reason": form.reason.data, "country": form.country.data or None,
                 "reporting_currency": (form.reporting_currency.data or "").upper() or None,
                 "exchange_rates": parsed_rates(form.exchange_rates.data)}, current_user)
        except DomainError as error:
            db.session.rollback()
            attach_errors(form, error)
        else:
            db.session.commit()
            jobs.start(report.id)
            flash(f"{report} is being prepared. This page shows its progress.", "info")
            return redirect(url_for(".view", report_id=report.id), 303)
    return report_list_page(form, form_status(form))


# --- one report -----------------------------------------------------------------------------------


def render_report_page(report: Report, publish_form=None, correction_form=None, status=200,
                       exception_errors=None):
    versions = services.reports_for(current_user, report.organisation_id, report.year)
    if correction_form is None and report.is_published:
        correction_form = prepare_request_form(ReportRequestForm(
            organisation_id=report.organisation_id, year=report.year))
    return render_template(
        "reports/view.html", report=report, versions=versions,
        publish_form=publish_form or PublishForm(), correction_form=correction_form,
        links=report_links(report), stalled=services.is_stalled(report),
        corrected_by=services.corrected_by(report), year_over=utcnow().year > report.year,
        signature=services.signature_line(report),
        exceptions=exceptions.gate(report, stored_snapshot(report)) if report.has_files
        else [], exception_errors=exception_errors or {}, exception_kinds=exceptions.KINDS,
    ), status


@bp.route("/<int:report_id>")
@allow(can_read_reports)
def view(report_id: int):
    return render_report_page(load_job(report_id))


@bp.route("/<int:report_id>/status")
@allow(can_read_reports)
def status(report_id: int):
    """The job's state as JSON, polled by the page's progress bar."""
    report = load_job(report_id)
    response = jsonify(services.status_json(report, report_links(report)))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/<int:report_id>/preview")
@allow(can_read_reports)
def preview(report_id: int):
    report = load_report(report_id)
    return render_template("reports/preview.html", report=report, links=report_links(report),
                           corrected_by=services.corrected_by(report),
                           **template_context(stored_snapshot(report), for_pdf=False))


@bp.route("/<int:report_id>/files/<kind>")
@allow(can_read_reports)
def download(report_id: int, kind: str):
    """A file of the public disclosure (the address reports always had)."""
    return file_response(load_report(report_id), kind)


@bp.route("/<int:report_id>/files/<any(public, internal):document>/<kind>")
@allow(can_read_reports)
def download_document(report_id: int, document: str, kind: str):
    """A file of either document: public or internal."""
    return file_response(load_report(report_id), kind, document)


@bp.route("/<int:report_id>/publish", methods=["POST"])
@allow(can_make_reports)
def publish(report_id: int):
    report = load_report(report_id)
    form = PublishForm()
    if form.validate_on_submit():
        try:
            services.publish_report(report, current_user, form.password.data, form.meaning.data,
                                    form.code.data)
        except DomainError as error:
            db.session.rollback()
            attach_errors(form, error)
        else:
            db.session.commit()
            jobs.start(report.id)
            flash("Signed. The report is being published; this page shows the progress.",
                  "success")
            return redirect(url_for(".view", report_id=report.id), 303)
    return render_report_page(load_report(report_id), publish_form=form,
                              status=form_status(form))


@bp.route("/<int:report_id>/retry", methods=["POST"])
@allow(can_make_reports)
def retry(report_id: int):
    report = load_report(report_id)
    try:
        services.retry_report(report, current_user)
    except DomainError as error:
        db.session.rollback()
        flash(error.message, "danger")
        return redirect(url_for(".view", report_id=report_id), 303)
    db.session.commit()
    jobs.start(report.id)
    flash("Started again. This page shows the progress.", "info")
    return redirect(url_for(".view", report_id=report.id), 303)


@bp.route("/<int:report_id>/exceptions/acknowledge", methods=["POST"])
@allow(can_make_reports)
def acknowledge_exception(report_id: int):
    key = request.form.get("key", "")
    return change_exception(report_id, key, lambda report: exceptions.acknowledge(
        report, key, request.form.get("reason"), current_user), "Exception acknowledged.")


@bp.route("/<int:report_id>/exceptions/withdraw", methods=["POST"])
@allow(can_make_reports)
def withdraw_exception(report_id: int):
    key = request.form.get("key", "")
    return change_exception(report_id, key, lambda report: exceptions.withdraw_acknowledgement(
        report, key, current_user), "Acknowledgement withdrawn.")


def change_exception(report_id: int, key: str, change, success: str):
    """Acknowledge or withdraw; a refusal shows the page again with the reason by the
    exception (or at the top, for a key that is not the draft's)."""
    report = load_report(report_id)
    try:
        change(report)
    except DomainError as error:
        db.session.rollback()
        messages = [message for field in ("key", "reason") for message in
                    error.fields.get(field, [])] or [error.message]
        return render_report_page(load_report(report_id), status=error.status,
                                  exception_errors={key: messages})
    db.session.commit()
    flash(success, "success")
    return redirect(url_for(".view", report_id=report_id, _anchor="exceptions-heading"), 303)


def load_reporting_organisation(organisation_id: int) -> Organisation:
    """An organisation whose reports the current user writes the note and branding of, or
    404."""
    organisation = db.session.get(Organisation, organisation_id)
    if organisation is None or organisation.is_void \
            or not can_write_methodology(current_user, organisation):
        abort(404)
    return organisation


# --- a patient group's funding beside its funders' disclosures ----------------------------------


@bp.route("/reconciliation/<int:organisation_id>")
@allow(can_reconcile_funding)
def reconciliation(organisation_id: int):
    group = db.session.get(Organisation, organisation_id)
    if group is None or group.is_void or not can_reconcile_funding(current_user, group):
        abort(404)
    last_year = utcnow().year - 1
    year = request.args.get("year", type=int) or last_year
    if not 2000 <= year <= last_year + 1:
        year = last_year
    return render_template("reports/reconciliation.html", group=group, year=year,
                           years=range(last_year + 1, last_year - 4, -1),
                           found=reconcile(group, year))


# --- the methodology note -------------------------------------------------------------------------


@bp.route("/methodology/<int:organisation_id>", methods=["GET", "POST"])
@allow(can_write_methodology)
def methodology(organisation_id: int):
    organisation = load_reporting_organisation(organisation_id)
    form = MethodologyForm()
    if request.method == "GET":
        form.methodology_note.data = organisation.methodology_note or \
            services.DEFAULT_METHODOLOGY
    if form.validate_on_submit():
        try:
            services.update_methodology_note(organisation, form.methodology_note.data,
                                             current_user)
        except DomainError as error:
            db.session.rollback()
            attach_errors(form, error)
        else:
            db.session.commit()
            flash(f"Methodology note of {organisation.name} saved. Reports generated from now "
                  "on carry it.", "success")
            return redirect(url_for(".index"), 303)
    return render_template("reports/methodology.html", form=form, organisation=organisation,
                           is_default=request.method == "GET"
                           and not organisation.methodology_note), form_status(form)


def uploaded_bytes(upload) -> bytes | None:
    """The content of an uploaded file (None when none was chosen); a large upload is spooled
    to a temporary file, closed here."""
    if upload is None or not getattr(upload, "filename", ""):
        return None
    try:
        return upload.read()
    finally:
        upload.close()


@bp.route("/branding/<int:organisation_id>", methods=["GET", "POST"])
@allow(can_write_methodology)
def branding(organisation_id: int):
    """The logo and colour of the organisation's public disclosure."""
    from .branding import DEFAULT_COLOUR, update_branding

    organisation = load_reporting_organisation(organisation_id)
    form = BrandingForm()
    if request.method == "GET":
        form.brand_colour.data = organisation.brand_colour or DEFAULT_COLOUR
    if form.validate_on_submit():
        try:
            update_branding(organisation, current_user, form.brand_colour.data,
                            uploaded_bytes(form.logo.data), form.remove_logo.data)
        except DomainError as error:
            db.session.rollback()
            attach_errors(form, error)
        else:
            db.session.commit()
            flash(f"Report branding of {organisation.name} saved. Reports generated from now on "
                  "carry it; published ones keep theirs.", "success")
            return redirect(url_for(".index"), 303)
    return render_template("reports/branding.html", form=form, organisation=organisation,
                           logo_src=logo_data_uri(organisation)), form_status(form)


def logo_data_uri(organisation: Organisation) -> str | None:
    """The current logo, shown on the branding page as it is printed (a data: address)."""
    import base64

    from .. import storage

    if not organisation.logo_sha256:
        return None
    content = base64.b64encode(storage.LOGOS.read(organisation.logo_sha256)).decode("ascii")
    return f"data:{organisation.logo_media_type};base64,{content}"


# --- the public pages -----------------------------------------------------------------------------


@public_bp.route("/", endpoint="index")
@public
def public_index():
    reports = services.published_reports()
    corrections = {report.corrects_id: report for report in reports if report.corrects_id}
    received = [report for report in reports
                if side_of(report.organisation) == "received"]
    return render_template("reports/public_index.html", received=received,
                           given=[report for report in reports if report not in received],
                           corrections=corrections, signatory=signatory)


@public_bp.route("/<int:report_id>", endpoint="view")
@public
def public_view(report_id: int):
    report = load_published(report_id)
    return render_template("reports/public_view.html", report=report,
                           links={"public": document_links(report, "public")},
                           corrected_by=services.corrected_by(report),
                           d=stored_public_document(report))


@public_bp.route("/<int:report_id>/<kind>", endpoint="download")
@public
def public_download(report_id: int, kind: str):
    return file_response(load_published(report_id), kind)


def init_app(app: Flask) -> None:
    from . import api

    app.register_blueprint(public_bp)
    api.register(app)
    register_filters(app)
    app.cli.add_command(jobs.run_report_jobs_command)
