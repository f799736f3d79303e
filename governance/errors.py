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


def _http_error(error: HTTPException):
    if is_api_request():
        return json_error(error.code or 500, error.description or error.name)
    return render_template("errors/error.html", code=error.code, title=error.name,
                           message=error.description), error.code


def _domain_error(error: DomainError):
    if is_api_request():
        return json_error(error.status, error.message, error.fields)
    return render_template("errors/error.html", code=error.status, title="Not saved",
                           message=error.message, fields=error.fields), error.status


def init_app(app: Flask) -> None:
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(DomainError, _domain_error)
