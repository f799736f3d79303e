"""A report's stored files as downloads, and the addresses they are served at (pages and API)."""

from flask import Response, abort, current_app, url_for

from .. import storage
from ..security import external_url
from .models import ARTEFACTS, Report

MEDIA_TYPES = {"pdf": "application/pdf", "csv": "text/csv; charset=utf-8",
               "json": "application/json"}


def stored_bytes(report: Report, kind: str) -> bytes:
    """Return a report file's stored bytes; 404 for no such file, 500 for a damaged one."""
    if kind not in ARTEFACTS or not report.has_files:
        abort(404)
    try:
        return storage.REPORTS.read(report.sha256_of(kind))
    except storage.MissingFile:
        current_app.logger.error("report %s: stored %s file missing or damaged", report.id, kind)
        abort(500, "This report's stored file is missing or damaged; the administrators have "
                   "been told.")


def file_response(report: Report, kind: str) -> Response:
    """Serve the stored bytes exactly as generated, with their SHA-256."""
    content = stored_bytes(report, kind)
    response = Response(content, mimetype=MEDIA_TYPES[kind])
    response.headers["Content-Disposition"] = f'attachment; filename="{report.file_name(kind)}"'
    response.headers["ETag"] = f'"{report.sha256_of(kind)}"'
    response.headers["X-Content-SHA256"] = report.sha256_of(kind)
    response.headers["Cache-Control"] = "public, max-age=86400, immutable" \
        if report.is_published else "private, no-store"
    return response


def report_links(report: Report, api: bool = False) -> dict[str, str]:
    """Return the download address of each file: the public one once published; absolute ones
    for the API."""
    if not report.has_files:
        return {}
    if report.is_published:
        endpoint = "public_reports.download"
    else:
        endpoint = "api_reports.report_file" if api else "reports.download"
    address = external_url if api else url_for
    return {kind: address(endpoint, report_id=report.id, kind=kind) for kind in ARTEFACTS}
