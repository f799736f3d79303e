from flask_wtf import FlaskForm
from wtforms import (
    DateField,
    HiddenField,
    PasswordField,
    RadioField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import InputRequired, Length, Optional

from ..auth.forms import signature_code_field
from ..forms import none_if_blank, vocab_options
from ..organisations.forms import strip_or_none, upper_or_none
from ..vocabulary import AGREEMENT_KINDS
from .services import CERTIFICATION_MEANINGS


class AgreementForm(FlaskForm):
    kind = SelectField("Kind", choices=vocab_options(AGREEMENT_KINDS), coerce=none_if_blank,
                       validate_choice=False)
    objective = TextAreaField("Objective", filters=[strip_or_none],
                              description="What the agreement is for, as it states it.")
    parties_and_roles = TextAreaField("Parties and their roles", filters=[strip_or_none])
    starts_on = DateField("Starts on", validators=[Optional()])
    ends_on = DateField("Ends on", validators=[Optional()])
    # Text, not a decimal field: the service gives the one message for a value that is not a
    # number, for the form, the API and imports alike.
    amount = StringField("Amount (ceiling)", filters=[strip_or_none],
                         description="The most that may be paid under it; up to two decimals. "
                                     "Leave empty for in-kind support that has no value.")
    currency = StringField("Currency", filters=[upper_or_none], default="EUR",
                           description="ISO 4217 code, such as EUR, GBP or USD.")
    signed_on = DateField("Signed on", validators=[Optional()],
                          description="The date the last party signed.")
    signatories = TextAreaField("Signatories", filters=[strip_or_none],
                                description="Who signed for each party.")
    external_id = StringField("External id", filters=[strip_or_none],
                              validators=[Optional(), Length(max=100)],
                              description="The agreement's reference in another system.")
    reason = StringField("Reason for the change", validators=[Optional(), Length(max=500)],
                         description="Kept in the audit trail.")
    version = HiddenField()


class CertificationForm(FlaskForm):
    meaning = RadioField("Meaning of your signature", choices=vocab_options(CERTIFICATION_MEANINGS),
                         validators=[InputRequired(message="State what your signature means.")])
    password = PasswordField("Your password",
                             description="Re-enter your password to sign electronically.",
                             validators=[InputRequired(message="Re-enter your password to "
                                                               "sign.")],
                             render_kw={"autocomplete": "current-password"})
    code = signature_code_field()
