"""What every feature's forms share: turning form data into service input and errors back."""

from collections.abc import Callable
from typing import Any

from flask import flash, redirect, request
from flask_wtf import FlaskForm
from wtforms import SelectChoice, SelectMultipleField, TextAreaField, widgets
from wtforms.validators import DataRequired, Length

from .errors import DomainError, VersionRequired
from .extensions import db
from .vocabulary import choices

NOT_INPUT = frozenset({"csrf_token", "submit", "reason", "version"})


def form_values(form: FlaskForm) -> dict:
    """Return the submitted values keyed by the services' field names."""
    return {name: value for name, value in form.data.items() if name not in NOT_INPUT}


def version_read(form: FlaskForm) -> int:
    """The version of the record the edit form was opened on (its hidden `version` field, as
    sent: a form made with `obj=record` would otherwise fill it with the version saved now),
    or refuse the change: without it, it would overwrite blindly whatever was saved since."""
    sent = (form.version.raw_data or [""])[0].strip()
    if not sent.isascii() or not sent.isdigit():
        raise VersionRequired("This form did not say which version of the record it changes, "
                              "so nothing was saved (it would overwrite any change made since "
                              "it was opened). Open the record's edit page again and make your "
                              "change there.")
    return int(sent)


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
              next_url: str | Callable[[Any], str], category: str = "success",
              raises: tuple[type[DomainError], ...] = (), code: int = 302):
    """Run a service call for a submitted form: on a domain error roll back and show its field
    errors on the form (answer None, so the view renders the form again); else commit, flash
    the success message (in `category`) and answer the redirect. `success` and `next_url` may
    be callables of what the service returned. Errors of the classes in `raises` are not the
    form's to show: they are rolled back and raised, for the error page."""
    try:
        result = save()
    except DomainError as error:
        db.session.rollback()
        if isinstance(error, raises):
            raise
        attach_errors(form, error)
        return None
    db.session.commit()
    flash(success(result) if callable(success) else success, category)
    return redirect(next_url(result) if callable(next_url) else next_url, code)


def form_status(form: FlaskForm) -> int:
    """The HTTP status of a form page: 200 to show it, else why it was refused (422 by default)."""
    if request.method in ("GET", "HEAD"):
        return 200
    return getattr(form, "error_status", 422)


def options(pairs) -> list[SelectChoice]:
    """Return select options from (value, label) pairs (WTForms 3.3 deprecates bare tuples)."""
    return [pair if isinstance(pair, SelectChoice) else SelectChoice(*pair) for pair in pairs]


def vocab_options(vocabulary: dict, blank: str | None = None) -> list[SelectChoice]:
    """Return a vocabulary's options, after a blank one when `blank` labels it (an optional
    field, or a filter's "any")."""
    return options([("", blank), *choices(vocabulary)] if blank else choices(vocabulary))


def none_if_blank(value):
    return value or None


def int_or_none(value):
    if value in (None, "", "None"):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return value  # the service reports it as not a valid integer


def int_data(field) -> int | None:
    """A filter field's value if it is a whole number (a record id or a year), else None."""
    return field.data if isinstance(field.data, int) else None


class MultiCheckboxField(SelectMultipleField):
    """A multiple choice shown as a list of checkboxes."""

    widget = widgets.ListWidget(prefix_label=False)
    option_widget = widgets.CheckboxInput()


class VoidForm(FlaskForm):
    reason = TextAreaField("Why is this record being voided?", validators=[DataRequired(),
                           Length(max=1000)])
