"""What a request may carry: text and numbers that no database keeps are refused at the door.

PostgreSQL cannot store U+0000 in text (SQLite can), and neither can encode a lone UTF-16
surrogate (a JSON string may write "\\ud800" alone): without this, a search for "%00" or such a
JSON string would fail inside the database driver. Ids and page numbers in a query string
larger than any integer column holds would overflow it. Each is refused up front, alike on both
databases, naming the field: 400 for the API, the error page for forms. A JSON body is read by
`read_json`, the one reader of the API's bodies, which refuses what Python cannot read safely.
"""

import json
import re

from flask import Flask, current_app, render_template, request

from ..errors import is_api_request, json_error
from ..validation import MAX_INTEGER

NUL = "\x00"
SURROGATES = re.compile("[\ud800-\udfff]")
MAX_JSON_DEPTH = 64
TOO_DEEP = (f"The request body is nested deeper than {MAX_JSON_DEPTH} levels of arrays and "
            "objects.")
# The query parameters holding a record id, a page or a year; the API reads its own with its
# schemas (422 naming the parameter).
INTEGER_PARAMETER = re.compile(r"page|per_page|year|[a-z_]+_id")


def unstorable(text: str) -> str | None:
    """What no database keeps in this text (a NUL character, a lone surrogate), else None."""
    if NUL in text:
        return "a NUL character"
    if SURROGATES.search(text):
        return "a lone UTF-16 surrogate"
    return None


def refusal_of(field: str, what: str) -> tuple[str, dict[str, list[str]]]:
    """The message and field errors refusing a field's text that holds what no database
    keeps."""
    return (f"“{field}” contains {what}, which text may not hold. Nothing was saved.",
            {field: [f"Text may not contain {what}."]})


def unstorable_field_in(value) -> tuple[str, str] | None:
    """The first field (key or text) of a JSON value no database keeps, and why; else None."""
    pending = [("", value)]
    while pending:
        path, item = pending.pop()
        if isinstance(item, str):
            problem = unstorable(item)
            if problem:
                return path or "body", problem
        elif isinstance(item, dict):
            for key, inner in reversed(item.items()):
                name = f"{path}.{key}" if path else str(key)
                problem = unstorable(str(key))
                if problem:
                    return printable(name), problem
                pending.append((name, inner))
        elif isinstance(item, list):
            pending.extend((f"{path}[{index}]", inner)
                           for index, inner in reversed(list(enumerate(item))))
    return None


def printable(name: str) -> str:
    """A field's name as it can be shown and encoded (its NUL and surrogates escaped)."""
    return SURROGATES.sub(lambda match: f"\\u{ord(match.group()):04x}",
                          name.replace(NUL, "\\0"))


def read_json(raw: bytes):
    """The JSON value of a request body, or ValueError saying what is wrong with it: not UTF-8
    (a byte-order mark in front, as some Windows tools write, is read past), not JSON, nested
    deeper than MAX_JSON_DEPTH, or a number of more digits than Python reads."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ValueError(f"The request body is not UTF-8 (byte {error.start}).") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"The request body is not valid JSON: {error.msg} at line "
                         f"{error.lineno}, column {error.colno}.") from None
    except RecursionError:
        raise ValueError(TOO_DEEP) from None
    except ValueError:  # Python's limit on the digits of an integer read from text
        raise ValueError("The request body holds a number of more digits than any field "
                         "takes.") from None
    if _depth(data) > MAX_JSON_DEPTH:
        raise ValueError(TOO_DEEP)
    return data


def _depth(value) -> int:
    deepest, pending = 0, [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            if depth <= MAX_JSON_DEPTH:
                pending.extend((inner, depth + 1)
                               for inner in (item.values() if isinstance(item, dict) else item))
    return deepest


def _unstorable_pair_in(pairs) -> tuple[str, str] | None:
    for name, value in pairs:
        problem = unstorable(name) or unstorable(value)
        if problem:
            return printable(name), problem
    return None


def _number_out_of_range_in(pairs) -> str | None:
    """The first id, page or year parameter holding a whole number no integer column holds."""
    for name, value in pairs:
        digits = value.strip().lstrip("+-")
        if INTEGER_PARAMETER.fullmatch(name) and digits.isascii() and digits.isdigit() \
                and (len(digits) > len(str(MAX_INTEGER)) or int(digits) > MAX_INTEGER):
            return name
    return None


def refuse_unstorable_input():
    found = _unstorable_pair_in([*request.args.items(multi=True),
                                 *request.form.items(multi=True)])
    if found is not None:
        current_app.logger.info("refused unstorable text in %s %s", request.method,
                                request.path)
        return _refusal(*refusal_of(*found))
    if is_api_request():
        return None
    name = _number_out_of_range_in(request.args.items(multi=True))
    if name is None:
        return None
    return _refusal(f"“{name}” is larger than any record id, page or year (at most "
                    f"{MAX_INTEGER:,}).", {name: [f"At most {MAX_INTEGER:,}."]})


def _refusal(message: str, fields: dict):
    if is_api_request():
        return json_error(400, message, fields)
    return render_template("errors/error.html", code=400, title="Not accepted",
                           message=message), 400


def init_app(app: Flask) -> None:
    # First of all the request hooks: some of them (sign-in, one-time form tokens) query with
    # what the request carries.
    app.before_request_funcs.setdefault(None, []).insert(0, refuse_unstorable_input)
