"""A report's stored files as downloads, and the addresses they are served at (pages and API).

Each report has two documents, each a PDF, a CSV and a JSON: the public disclosure (at the
addresses reports always had) and the internal governance report. Only the public one is ever
served without signing in, and only once published.
"""

from flask import Response, abort, current_app, url_for

from .. import storage
from ..security import external_url
from .models import ARTEFACTS, DOCUMENTS, Report

MEDIA_TYPES = {"pdf": "application/pdf", "csv": "text/csv; charset=utf-8",
               "json": "application/json"}


def stored_bytes(report: Report, kind: str, document: str = "public") -> bytes:
    """Return a report file's stored bytes; 404 for no such file, 500 for a damaged one."""
    if kind not in ARTEFACTS or document not in DOCUMENTS or not report.has_files \
            or report.sha256_of(kind, document) is None:
        abort(404)
    try:
        return storage.REPORTS.read(report.sha256_of(kind, document))
    except storage.MissingFile:
        current_app.logger.error("report %s: stored %s %s file missing or damaged", report.id,
                                 document, kind)
        abort(500, "This report's stored file is missing or damaged; the administrators have "
                   "been told.")


def file_response(report: Report, kind: str, document: str = "public") -> Response:
    """Serve the stored bytes exactly as generated, with their SHA-256."""
    content = stored_bytes(report, kind, document)
    sha256 = report.sha256_of(kind, document)
    response = Response(content, mimetype=MEDIA_TYPES[kind])
    response.headers["Content-Disposition"] = \
        f'attachment; filename="{report.file_name(kind, document)}"'
    response.headers["ETag"] = f'"{sha256}"'
    response.headers["X-Content-SHA256"] = sha256
    response.headers["Cache-Control"] = "public, max-age=86400, immutable" \
        if report.is_published and document == "public" else "private, no-store"
    return response


def document_links(report: Report, document: str, api: bool = False) -> dict[str, str]:
    """The download address of each file of one document: the public page's for a published
    public disclosure, the signed-in ones otherwise; absolute ones for the API."""
    address = external_url if api else url_for
    if document == "public" and report.is_published:
        return {kind: address("public_reports.download", report_id=report.id, kind=kind)
                for kind in ARTEFACTS}
    if document == "public":
        endpoint = "api_reports.report_file" if api else "reports.download"
        return {kind: address(endpoint, report_id=report.id, kind=kind) for kind in ARTEFACTS}
    endpoint = "api_reports.report_document_file" if api else "reports.download_document"
    return {kind: address(endpoint, report_id=report.id, document=document, kind=kind)
            for kind in ARTEFACTS}


def report_links(report: Report, api: bool = False) -> dict:
    """`pdf`, `csv` and `json` of the public disclosure (as reports always had), and `public`
    and `internal`, each with its three files; empty until the files exist."""
    if not report.has_files:
        return {}
    public = document_links(report, "public", api)
    links: dict = dict(public, public=public)
    if report.internal_json_sha256:  # reports from before the two documents have one set
        links["internal"] = document_links(report, "internal", api)
    return links
