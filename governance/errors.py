"""Domain errors raised by services, and how pages and the API show them."""

from flask import Flask, jsonify, render_template, request
from werkzeug.exceptions import HTTPException


def is_api_request() -> bool:
    """Is this request one of the JSON API's (answered in JSON, errors included)?"""
    return request.path.startswith("/api/")


def json_error(status: int, message: str, fields: dict | None = None):
    """Answer an API error in its one shape: a message, and each field's problems."""
    body = {"error": {"message": message}}
    if fields:
        body["error"]["fields"] = fields
    return jsonify(body), status


class DomainError(Exception):
    """Base of the errors a service raises for a person to read."""

    status = 422

    def __init__(self, message: str, fields: dict[str, list[str]] | None = None):
        super().__init__(message)
        self.message = message
        self.fields = fields or {}


class ValidationFailed(DomainError):
    """The input breaks a rule; `fields` names each field and why."""

    def __init__(self, fields: dict[str, list[str]], message: str = "Some values are not valid."):
        super().__init__(message, fields)


class RowsInvalid(ValidationFailed):
    """Some rows of a batch are not valid; `rows` holds each bad row's field errors by index."""

    def __init__(self, rows: dict[int, dict[str, list[str]]]):
        super().__init__({}, f"{len(rows)} row(s) are not valid; nothing was saved.")
        self.rows = rows


class NotAllowed(DomainError):
    status = 403


class NotFound(DomainError):
    """No such record, or one the person may not see (the answer is the same)."""

    status = 404


class Conflict(DomainError):
    """The record changed since the person opened it."""

    status = 409


class VersionRequired(DomainError):
    """A change to a record came without the version it was made to: it would overwrite
    blindly whatever was saved since."""

    status = 428


class StaleVersion(Conflict):
    """The change was made to an older version of the record than the one saved now.

    The answer carries the current version (and its ETag), so the person can look at it and
    retry at once; `busy` says another save of the record won while this one waited for it."""

    def __init__(self, message: str, record, busy: bool = False):
        super().__init__(message)
        self.current_version = record.version
        self.etag = etag_of(record)
        self.busy = busy


def etag_of(record) -> str:
    """The strong ETag of the version a record is at."""
    return etag(record.audit_entity(), record.id, record.version)


def etag(kind: str, record_id: int, version: int) -> str:
    """The strong ETag of a version of a record: its kind, id and version, e.g.
    "interaction-12-v3"."""
    return f'"{kind}-{record_id}-v{version}"'


def _http_error(error: HTTPException):
    if is_api_request():
        return json_error(error.code or 500, error.description or error.name)
    return render_template("errors/error.html", code=error.code, title=error.name,
                           message=error.description), error.code


def _domain_error(error: DomainError):
    if is_api_request():
        if isinstance(error, StaleVersion):
            return _stale_version_answer(error)
        return json_error(error.status, error.message, error.fields)
    return render_template("errors/error.html", code=error.status, title="Not saved",
                           message=error.message, fields=error.fields), error.status


def _stale_version_answer(error: StaleVersion):
    """409 with the version to send next: in the body, as the ETag, and Retry-After: 0 when
    another save of the record won while this one waited (it may be retried at once)."""
    response = jsonify({"error": {"message": error.message,
                                  "current_version": error.current_version}})
    response.headers["ETag"] = error.etag
    if error.busy:
        response.headers["Retry-After"] = "0"
    return response, error.status


def init_app(app: Flask) -> None:
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(DomainError, _domain_error)
