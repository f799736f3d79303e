from flask_wtf import FlaskForm
from wtforms import (
    DateField,
    IntegerField,
    PasswordField,
    RadioField,
    SelectField,
    TextAreaField,
)
from wtforms.validators import InputRequired, NumberRange, Optional

from ..auth.forms import signature_code_field
from ..forms import int_or_none, none_if_blank, options, vocab_options
from ..vocabulary import (
    APPROVAL_DECISIONS,
    DIMENSIONS,
    FLAG_STATES,
    SEVERITIES,
    SIGNATURE_MEANINGS,
    choices,
)
from .approvals import APPROVAL_QUEUE_STATES


class QueueFilterForm(FlaskForm):
    class Meta:
        csrf = False

    dimension = SelectField("Dimension",
                            choices=vocab_options(DIMENSIONS, "Any dimension"),
                            coerce=none_if_blank, validate_choice=False)
    severity = SelectField("Severity", choices=vocab_options(SEVERITIES, "Any severity"),
                           coerce=none_if_blank, validate_choice=False)
    partnership_id = SelectField("Partnership", coerce=int_or_none, validate_choice=False)
    rule = SelectField("Rule", coerce=none_if_blank, validate_choice=False)
    state = SelectField("State", choices=options([*choices(FLAG_STATES), ("", "Any state")]),
                        default="open", coerce=none_if_blank, validate_choice=False)
    min_age_days = IntegerField("Open for at least (days)",
                                validators=[Optional(), NumberRange(min=0, max=36500)])


class TransitionForm(FlaskForm):
    state = RadioField(
        "Resolution",
        choices=options([
            ("acknowledged", "Acknowledge — keep the practice, with a justification"),
            ("remediated", "Mark remediated — the record has been fixed"),
            ("dismissed", "Dismiss — the rule does not apply here, with a reason"),
        ]),
        validators=[InputRequired(message="Choose how to resolve the flag.")],
    )
    note = TextAreaField("Justification or reason",
                         description="Required to acknowledge or dismiss; kept in the audit "
                                     "trail with your name and the time.",
                         render_kw={"rows": 3})


class SignOffForm(FlaskForm):
    meaning = RadioField("Meaning of your signature", choices=vocab_options(SIGNATURE_MEANINGS),
                         validators=[InputRequired(message="State what your signature means.")])
    password = PasswordField("Your password",
                             description="Re-enter your password to sign electronically.",
                             validators=[InputRequired(message="Re-enter your password to "
                                                               "sign.")],
                             render_kw={"autocomplete": "current-password"})
    code = signature_code_field()


class DashboardFilterForm(FlaskForm):
    class Meta:
        csrf = False

    date_from = DateField("From", validators=[Optional()])
    date_to = DateField("To", validators=[Optional()])
    partnership_id = SelectField("Partnership", coerce=int_or_none, validate_choice=False)


class PlanDecisionForm(FlaskForm):
    decision = RadioField("Decision", choices=vocab_options(APPROVAL_DECISIONS),
                          validators=[InputRequired(message="Approve or reject the plan.")])
    note = TextAreaField("Note", description="Required to reject; the advocate reads it. Kept "
                                             "in the audit trail with your name and the time.",
                         render_kw={"rows": 3})


class SubmitPlanForm(FlaskForm):
    """Submit a plan for approval (the button alone; CSRF-protected)."""


class ApprovalFilterForm(FlaskForm):
    class Meta:
        csrf = False

    state = SelectField("Plans", choices=options(list(APPROVAL_QUEUE_STATES.items())),
                        default="awaiting", validate_choice=False)
