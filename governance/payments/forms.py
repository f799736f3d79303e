from flask_wtf import FlaskForm
from wtforms import DateField, HiddenField, SelectField, StringField
from wtforms.validators import DataRequired, Length, Optional

from ..forms import int_or_none, none_if_blank, vocab_options
from ..organisations.forms import strip_or_none, upper_or_none
from ..vocabulary import PAYEE_KINDS, PAYMENT_SERVICES
from ..widgets import RecordSelectField


class PaymentForm(FlaskForm):
    interaction_id = RecordSelectField(
        "Interaction it paid for", coerce=int_or_none,
        description="The advisory board, meeting or review the payee took part in (optional).")
    payee_reference = StringField(
        "Payee reference", filters=[strip_or_none],
        description="A pseudonym or your internal reference, such as P-0042. Never a name or an "
                    "email: no names are stored or reported.")
    payee_kind = SelectField("Payee is a", choices=vocab_options(PAYEE_KINDS, "Choose…"),
                             coerce=none_if_blank, validate_choice=False)
    service = SelectField("Service", choices=vocab_options(PAYMENT_SERVICES, "Choose…"),
                          coerce=none_if_blank, validate_choice=False,
                          description="What the fee paid for: it is checked against the "
                                      "rate card of this service.")
    hours = StringField("Hours", filters=[strip_or_none],
                        description="Hours worked, for an hourly or daily rate (optional).")
    # Text, not decimal fields: the service gives the one message for a value that is not a
    # number, for the form, the API and imports alike.
    fee = StringField("Fee", filters=[strip_or_none],
                      description="Up to two decimals, without thousands separators.")
    expenses = StringField("Expenses", filters=[strip_or_none], default="0.00",
                           description="Travel, accommodation and other costs reimbursed.")
    currency = StringField("Currency", filters=[upper_or_none], default="GBP",
                           description="ISO 4217 code, such as GBP, EUR or USD.")
    paid_on = DateField("Paid on", validators=[DataRequired(
        message="Enter the date the payment was made.")])
    agreement_id = SelectField(
        "Agreement", coerce=int_or_none, validate_choice=False,
        description="The written agreement the payment is made under, of the interaction's "
                    "partnership.")
    reason = StringField("Reason for the change", validators=[Optional(), Length(max=500)],
                         description="Kept in the audit trail.")
    version = HiddenField()


class PaymentFilterForm(FlaskForm):
    class Meta:
        csrf = False

    year = SelectField("Year", coerce=int_or_none, validate_choice=False)
    service = SelectField("Service", choices=vocab_options(PAYMENT_SERVICES, "Any service"),
                          coerce=none_if_blank, validate_choice=False)
