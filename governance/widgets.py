"""A select among thousands of records, rendered fast.

Filter forms offer every partnership or organisation the user may see: thousands of options.
WTForms' Select builds an option object and its attributes for each one, which made the list
pages slow; RecordSelect writes the same markup in one pass, and record_choices renders the
options of a whole table once per process, reused until the table changes.
"""

from dataclasses import dataclass

from flask import has_request_context, request
from markupsafe import Markup, escape
from sqlalchemy import func, select
from wtforms import SelectField
from wtforms.widgets import html_params

from .extensions import db


def _option(value, label, selected: bool) -> str:
    shown = escape(label if label not in (None, "") else value)
    value = value if type(value) is int else escape(value)  # ids need no escaping
    return (f'<option selected value="{value}">{shown}</option>' if selected
            else f'<option value="{value}">{shown}</option>')


@dataclass(frozen=True)
class RenderedOptions:
    """A select's options rendered once, none selected, reused while `version` holds."""

    version: tuple
    html: str


class RecordSelect:
    """Render a select among many records in one pass, with the markup of WTForms' Select.
    Choices are (value, label) pairs, values record ids (ints) or text, or RenderedOptions."""

    def __call__(self, field, **kwargs):
        kwargs.setdefault("id", field.id)
        chosen = field.data
        html = [f"<select {html_params(name=field.name, **kwargs)}>"]
        if isinstance(field.choices, RenderedOptions):
            options_html = field.choices.html
            plain = f'<option value="{"" if chosen is None else escape(chosen)}">'
            html.append(options_html.replace(plain, plain.replace("<option ",
                                                                  "<option selected "), 1))
        else:
            for value, label in field.choices:
                if type(value) is int:
                    selected = value == chosen
                else:
                    try:
                        selected = field.coerce(value) == chosen
                    except (TypeError, ValueError):
                        selected = False
                html.append(_option(value, label, selected))
        html.append("</select>")
        return Markup("".join(html))


class RecordSelectField(SelectField):
    """A filter's select among many records: choices are plain (value, label) pairs (or
    RenderedOptions), any value is accepted (the service narrows by it and the access checks
    still apply)."""

    widget = RecordSelect()

    def __init__(self, label=None, validators=None, coerce=str, **kwargs):
        super().__init__(label, validators, coerce=coerce, validate_choice=False, **kwargs)


_RENDERED: dict[tuple, RenderedOptions] = {}  # per process: a kind's records, rendered


def _table_version(model) -> tuple:
    """Changes whenever a row is added, edited or voided: count, latest update, summed
    versions, last id (a plain association table: its count). Read once per request."""
    cache = request.__dict__.setdefault("_table_versions", {}) if has_request_context() else {}
    key = getattr(model, "__tablename__", None) or model.name
    if key not in cache:
        cache[key] = _read_table_version(model)
    return cache[key]


def _read_table_version(model) -> tuple:
    if not hasattr(model, "updated_at"):
        return tuple(db.session.execute(select(func.count()).select_from(model)).one())
    return tuple(db.session.execute(select(
        func.count(), func.max(model.updated_at), func.sum(model.version), func.max(model.id))
    ).one())


def record_choices(model, label, blank: str, *conditions, scope_key=None, depends_on=()):
    """The choices of a RecordSelectField: a blank choice, then the model's live records
    meeting the conditions, as (id, label) ordered by label.

    The options are rendered once per process and reused until the tables they are read from
    change (a record added, edited or voided changes its table's row count, latest update,
    summed versions or last id): every record of the kind (no conditions: what a compliance
    officer of the whole installation chooses from), or those of one scope, named by
    `scope_key` (permissions.scope_key), whose conditions also read the `depends_on` models.
    Conditions without a scope_key are read each time.
    """
    query = select(model.id, label).where(model.voided_at.is_(None), *conditions)
    if conditions and scope_key is None:
        return [("", blank), *db.session.execute(query.order_by(label)).all()]
    version = tuple(_table_version(m) for m in (model, *depends_on))
    key = (str(db.engine.url), model.__tablename__, label.key, blank, scope_key)
    cached = _RENDERED.get(key)
    if cached is None or cached.version != version:
        rows = db.session.execute(query.order_by(label)).all()
        cached = RenderedOptions(version, "".join(
            [_option("", blank, False), *(_option(value, text, False) for value, text in rows)]))
        if len(_RENDERED) >= 256:  # many scopes or applications in one process: start again
            _RENDERED.clear()
        _RENDERED[key] = cached
    return cached
