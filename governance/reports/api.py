"""POST /api/v1/reports, GET /api/v1/reports/{id} and its files, in the OpenAPI document too."""

from flask import Flask, abort, url_for
from flask.views import MethodView
from flask_login import current_user
from marshmallow import Schema, fields
from marshmallow.validate import OneOf

from ..api.views import documented_errors, json_body, request_body, resource, saving
from ..extensions import db
from ..permissions import allow, can_make_reports, can_read_reports
from ..validation import load
from ..vocabulary import REPORT_JOBS, REPORT_STATUSES
from . import exceptions, jobs, services
from .downloads import file_response, report_links
from .models import ARTEFACTS, DOCUMENTS, Report
from .views import load_job, load_report

reports = resource("reports", "Annual transparency reports: a job that generates the PDF, CSV "
                              "and JSON, then their status and files.")


class Signature(Schema):
    name = fields.String(required=True)
    signed_at = fields.String(required=True, metadata={"description": "UTC, ISO 8601."})
    meaning = fields.String(required=True)


class Hashes(Schema):
    pdf = fields.String(required=True)
    csv = fields.String(required=True)
    json = fields.String(required=True)


class DocumentLinks(Schema):
    pdf = fields.String(required=True)
    csv = fields.String(required=True)
    json = fields.String(required=True)


class Links(DocumentLinks):
    """`pdf`, `csv` and `json` are the public disclosure's files, as `public` has them."""

    public = fields.Nested(DocumentLinks, required=True, metadata={
        "description": "The public disclosure: no staff names, flag notes or dispute notes. "
                       "Once published, served on the public page without signing in."})
    internal = fields.Nested(DocumentLinks, metadata={
        "description": "The internal governance report: flags and their resolutions, "
                       "disputes and answers, acknowledged exceptions. Never public."})


class Acknowledgement(Schema):
    reason = fields.String(required=True)
    by = fields.String(required=True, metadata={"description": "The compliance officer's name."})
    at = fields.String(required=True, metadata={"description": "UTC, ISO 8601."})


class ExceptionLine(Schema):
    """An exception of the draft, to fix or acknowledge before the signature."""

    id = fields.String(required=True, metadata={"description": "exception-<key>"})
    key = fields.String(required=True, metadata={
        "description": "<kind>:<subject>, stable across regenerations of the draft."})
    kind = fields.String(required=True, validate=OneOf(list(exceptions.KINDS)))
    subject = fields.String(required=True, metadata={
        "description": "support-N, interaction-N or organisation-N."})
    message = fields.String(required=True)
    acknowledged = fields.Boolean(required=True)


class AcknowledgedException(Schema):
    """An exception with its acknowledgement."""

    id = fields.String(required=True)
    key = fields.String(required=True)
    kind = fields.String(required=True, validate=OneOf(list(exceptions.KINDS)))
    subject = fields.String(required=True)
    message = fields.String(required=True)
    acknowledgement = fields.Nested(Acknowledgement, allow_none=True)


class ReportStatus(Schema):
    """A report job: its status, and when done its files (with their SHA-256)."""

    id = fields.Integer(required=True)
    organisation_id = fields.Integer(required=True)
    year = fields.Integer(required=True)
    version = fields.Integer(required=True, metadata={
        "description": "1, then 2 for a correction of a published version, and so on."})
    status = fields.String(required=True, validate=OneOf(list(REPORT_STATUSES)))
    job = fields.String(required=True, validate=OneOf(list(REPORT_JOBS)))
    progress = fields.Integer(required=True, metadata={"description": "0 to 100."})
    progress_note = fields.String(allow_none=True)
    error = fields.String(allow_none=True, metadata={"description": "Why the job failed."})
    stalled = fields.Boolean(required=True, metadata={
        "description": "The worker running the job stopped responding; whoever looks next "
                       "starts it again."})
    attempts = fields.Integer(required=True, metadata={
        "description": "How many times a worker started the job since it was asked for."})
    pages = fields.Integer(allow_none=True)
    generated_at = fields.String(allow_none=True)
    published_at = fields.String(allow_none=True)
    corrects = fields.Integer(allow_none=True, metadata={
        "description": "The id of the published report this version corrects."})
    correction_reason = fields.String(allow_none=True)
    signature = fields.Nested(Signature, allow_none=True)
    sha256 = fields.Nested(Hashes, allow_none=True, metadata={
        "description": "The public disclosure's files."})
    internal_sha256 = fields.Nested(Hashes, allow_none=True, metadata={
        "description": "The internal governance report's files."})
    internal_pages = fields.Integer(allow_none=True)
    country = fields.String(allow_none=True, metadata={
        "description": "The recipients' country of a national disclosure; null: all."})
    reporting_currency = fields.String(allow_none=True)
    exchange_rates = fields.Dict(keys=fields.String(), values=fields.String(), allow_none=True)
    links = fields.Nested(Links, metadata={"description": "Present when the files exist."})
    exceptions = fields.List(fields.Nested(ExceptionLine), metadata={
        "description": "Present when the files exist: the draft's exceptions; the signature "
                       "is refused while one is not acknowledged."})


def _links(report: Report) -> dict[str, str] | None:
    return report_links(report, api=True) or None


@reports.route("/reports")
class Reports(MethodView):
    @allow(can_make_reports)
    @reports.doc(**request_body(services.ReportRequest,
                                "`reason` is required when a version of the year's report is "
                                "already published: the new version is a correction."))
    @reports.response(202, ReportStatus)
    @documented_errors(reports, 400, 403, 409, 422)
    def post(self):
        """Ask for a report; it is generated in the background (poll the answer's id)."""
        values = json_body()
        with saving():
            report = services.request_report(values, current_user)
        jobs.start(report.id)
        db.session.refresh(report)
        body = services.status_json(report, _links(report))
        return body, 202, {"Location": url_for("api_reports.ReportById", report_id=report.id)}


@reports.route("/reports/<id:report_id>")
class ReportById(MethodView):
    @allow(can_read_reports)
    @reports.response(200, ReportStatus)
    @documented_errors(reports, 403, 404)
    def get(self, report_id: int):
        """A report's status and, when generated, links to its PDF, CSV and JSON.

        A job whose worker stopped responding (no heartbeat for JOB_STALL_SECONDS, 30 s by
        default) is started again by whoever looks, up to JOB_MAX_ATTEMPTS (3) attempts; then
        it is `failed`, and its `error` says so."""
        report = load_job(report_id)
        return services.status_json(report, _links(report))


@reports.route("/reports/<id:report_id>/retry")
class ReportRetry(MethodView):
    @allow(can_make_reports)
    @reports.response(202, ReportStatus)
    @documented_errors(reports, 403, 404, 409)
    def post(self, report_id: int):
        """Start a failed job (or one whose worker stopped responding) again; 409 otherwise."""
        report = load_report(report_id)
        with saving():
            services.retry_report(report, current_user)
        jobs.start(report.id)
        db.session.refresh(report)
        body = services.status_json(report, _links(report))
        return body, 202, {"Location": url_for("api_reports.ReportById", report_id=report.id)}


@reports.route("/reports/<id:report_id>/files/<kind>", endpoint="report_file")
class ReportFile(MethodView):
    @allow(can_read_reports)
    @reports.response(200, description="The stored file, byte for byte.")
    @documented_errors(reports, 403, 404)
    def get(self, report_id: int, kind: str):
        """A generated file of the report's public disclosure (pdf, csv or json)."""
        if kind not in ARTEFACTS:
            abort(404)
        return file_response(load_report(report_id), kind)


@reports.route("/reports/<id:report_id>/files/<any(public, internal):document>/<kind>",
               endpoint="report_document_file")
class ReportDocumentFile(MethodView):
    @allow(can_read_reports)
    @reports.response(200, description="The stored file, byte for byte.")
    @documented_errors(reports, 403, 404)
    def get(self, report_id: int, document: str, kind: str):
        """A generated file of either document (`public` or `internal`; pdf, csv or json)."""
        if kind not in ARTEFACTS or document not in DOCUMENTS:
            abort(404)
        return file_response(load_report(report_id), kind, document)


@reports.route("/reports/<id:report_id>/exceptions/<key>/acknowledgement")
class ExceptionAcknowledgementById(MethodView):
    @allow(can_make_reports)
    @reports.doc(**request_body(exceptions.AcknowledgementRequest))
    @reports.response(200, AcknowledgedException)
    @documented_errors(reports, 400, 403, 404, 409, 422)
    def post(self, report_id: int, key: str):
        """Acknowledge one of the draft's exceptions with a reason (it replaces an earlier
        acknowledgement); 422 on `key` when it is not one of the draft's, 409 when the report
        is not a generated draft."""
        report = load_report(report_id)
        values = load(exceptions.AcknowledgementRequest(), json_body())
        with saving():
            body = exceptions.acknowledge(report, key, values["reason"], current_user)
        return body

    @allow(can_make_reports)
    @reports.response(200, AcknowledgedException)
    @documented_errors(reports, 403, 404, 409, 422)
    def delete(self, report_id: int, key: str):
        """Withdraw the acknowledgement of an exception (it is voided, kept in the history)."""
        report = load_report(report_id)
        with saving():
            body = exceptions.withdraw_acknowledgement(report, key, current_user)
        return body


def register(app: Flask) -> None:
    """Add the routes to the API when it is already set up (else it picks them up itself)."""
    api = app.extensions.get("governance_api")
    if api is not None and reports.name not in app.blueprints:
        api.register_blueprint(reports)

