"""What every feature's forms share: turning form data into service input and errors back."""

from flask_wtf import FlaskForm

from .errors import DomainError

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
