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
