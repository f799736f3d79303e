"""Text that no database keeps: a NUL character is refused before anything reads it.

PostgreSQL cannot store U+0000 in text (SQLite can), so without this a search for "%00" or a
JSON string holding "\\u0000" would fail inside the database driver. It is refused up front,
alike on both databases, naming the field: 400 for the API, the error page for forms.
"""

from flask import Flask, current_app, render_template, request

from ..errors import is_api_request, json_error

NUL = "\x00"


def _nul_in(value, path: str = "") -> str | None:
    """The name of the first field whose text (or key) holds a NUL character, else None."""
    if isinstance(value, str):
        return (path or "body") if NUL in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            name = f"{path}.{key}" if path else str(key)
            if NUL in str(key):
                return name
            found = _nul_in(item, name)
            if found:
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = _nul_in(item, f"{path}[{index}]")
            if found:
                return found
    return None


def _nul_field_in_json() -> str | None:
    raw = request.get_data(cache=True)
    # JSON can only write NUL as the escape \u0000 (a raw control character is invalid): a
    # UTF-8 body without that text needs no parsing here.
    if b"\\u0000" not in raw and b"\x00" not in raw:
        return None
    return _nul_in(request.get_json(silent=True, cache=True))


def _nul_field_in(pairs) -> str | None:
    for name, value in pairs:
        if NUL in name or NUL in value:
            return name.replace(NUL, "\\0")
    return None


def refuse_nul_characters():
    field = _nul_field_in(request.args.items(multi=True))
    if field is None:
        field = _nul_field_in_json() if request.is_json else \
            _nul_field_in(request.form.items(multi=True))
    if field is None:
        return None
    message = (f"“{field}” contains a NUL character (\\0), which text may not hold. "
               "Nothing was saved.")
    current_app.logger.info("refused a NUL character in %s %s", request.method, request.path)
    if is_api_request():
        return json_error(400, message, {field: ["Text may not contain a NUL character."]})
    return render_template("errors/error.html", code=400, title="Not accepted",
                           message=message), 400


def init_app(app: Flask) -> None:
    # First of all the request hooks: some of them (sign-in, one-time form tokens) query with
    # what the request carries.
    app.before_request_funcs.setdefault(None, []).insert(0, refuse_nul_characters)
