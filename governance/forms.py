"""What every feature's forms share: turning form data into service input and errors back."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import flash, redirect
from flask_wtf import FlaskForm
from markupsafe import Markup, escape
from sqlalchemy import func, select
from wtforms import SelectField
from wtforms.widgets import html_params

from .errors import DomainError
from .extensions import db

NOT_INPUT = frozenset({"csrf_token", "submit", "reason", "version"})


def form_values(form: FlaskForm) -> dict:
    """Return the submitted values keyed by the DOMAIN.md field names."""
    return {name: value for name, value in form.data.items() if name not in NOT_INPUT}


def attach_errors(form: FlaskForm, error: DomainError) -> None:
    """Show a service's field errors on the form's fields (others go to form.form_errors)."""
    for name, messages in error.fields.items():
        field = form._fields.get(name)
        if field is not None:
            field.errors = list(field.errors) + list(messages)
        else:
            form.form_errors.extend(f"{name}: {message}" for message in messages)
    if not error.fields:
        form.form_errors.append(error.message)
    form.error_status = error.status


def save_form(form: FlaskForm, save: Callable[[], Any], success: str | Callable[[Any], str],
              next_url: str | Callable[[Any], str], code: int = 302):
    """Run a service call for a submitted form: on a domain error roll back and show its field
    errors on the form (answer None, so the view renders the form again); else commit, flash
    the success message and answer the redirect. `success` and `next_url` may be callables of
    what the service returned."""
    try:
        result = save()
    except DomainError as error:
        db.session.rollback()
        attach_errors(form, error)
        return None
    db.session.commit()
    flash(success(result) if callable(success) else success, "success")
    return redirect(next_url(result) if callable(next_url) else next_url, code)


def form_status(form: FlaskForm) -> int:
    """The HTTP status of a form page: 200 to show it, else why it was refused (422 by default)."""
    from flask import request

    if request.method in ("GET", "HEAD"):
        return 200
    return getattr(form, "error_status", 422)


def options(pairs) -> list:
    """Return select options from (value, label) pairs, as options where WTForms has them (3.3
    deprecates bare tuples; 3.2 knows only tuples)."""
    try:
        from wtforms import SelectChoice
    except ImportError:
        return [tuple(pair) for pair in pairs]
    return [pair if isinstance(pair, SelectChoice) else SelectChoice(*pair) for pair in pairs]


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
    """Render a select among many records (thousands of partnerships or organisations) in one
    pass, with the markup of WTForms' Select (which builds objects and attributes per option).
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


_RENDERED: dict[tuple, RenderedOptions] = {}  # per process: every record of a kind, rendered


def record_choices(model, label, blank: str, *conditions):
    """The choices of a RecordSelectField: a blank choice, then the model's live records as
    (id, label) ordered by label.

    Without conditions (every record of the kind: what compliance and auditors choose from)
    the options are rendered once per process and reused until the table changes: a record
    added, edited or voided changes its row count, latest update, summed versions or last id.
    """
    query = select(model.id, label).where(model.voided_at.is_(None), *conditions)
    if conditions:
        return [("", blank), *db.session.execute(query.order_by(label)).all()]
    version = tuple(db.session.execute(select(
        func.count(), func.max(model.updated_at), func.sum(model.version), func.max(model.id))
    ).one())
    key = (str(db.engine.url), model.__tablename__, label.key, blank)
    cached = _RENDERED.get(key)
    if cached is None or cached.version != version:
        rows = db.session.execute(query.order_by(label)).all()
        cached = RenderedOptions(version, "".join(
            [_option("", blank, False), *(_option(value, text, False) for value, text in rows)]))
        if len(_RENDERED) >= 32:  # many applications in one process (the tests): start again
            _RENDERED.clear()
        _RENDERED[key] = cached
    return cached
