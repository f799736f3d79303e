from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import (
    BooleanField,
    DateField,
    HiddenField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Length, Optional

from ..extensions import db
from ..forms import int_or_none, none_if_blank, options, vocab_options
from ..organisations.forms import strip_or_none, upper_or_none
from ..permissions import partnership_scope, scope_key, sees_whole_installation
from ..vocabulary import (
    CONFIRMATION_STATES,
    PARTNERSHIP_KINDS,
    PARTNERSHIP_STATUSES,
    SUPPORT_KINDS,
)
from ..widgets import RecordSelectField, record_choices
from .models import Partnership, partnership_members


def partnership_choices(blank: str) -> list:
    """The live partnerships the current user may see as options by title, after a blank one."""
    rows = db.session.execute(
        select(Partnership.id, Partnership.title)
        .where(partnership_scope(current_user), Partnership.voided_at.is_(None))
        .order_by(Partnership.title)
    ).all()
    return options([("", blank), *[tuple(row) for row in rows]])


def partnership_filter_choices(blank: str):
    """A filter's options: the partnerships the current user may see (rendered once per scope
    while the partnerships do not change)."""
    conditions = () if sees_whole_installation(current_user) \
        else (partnership_scope(current_user),)
    return record_choices(Partnership, Partnership.title, blank, *conditions,
                          scope_key=scope_key(current_user), depends_on=(partnership_members,))


def _date(label, description=None):
    return DateField(label, validators=[Optional()], description=description)


def ints(values):
    """Keep whole numbers; the service reports anything else."""
    return [int_or_none(v) for v in values or [] if v not in ("", None)]


class IdsField(SelectMultipleField):
    def process_formdata(self, valuelist):
        self.data = ints(valuelist)


class PartnershipForm(FlaskForm):
    title = StringField("Title", validators=[DataRequired(), Length(max=200)])
    sponsor_id = SelectField("Sponsor", coerce=int_or_none, validate_choice=False)
    patient_group_id = SelectField("Patient group", coerce=int_or_none, validate_choice=False)
    other_organisation_ids = IdsField(
        "Other organisations", coerce=int, validate_choice=False,
        description="Academic partners, facilitators, CROs or regulators taking part (hold Ctrl "
                    "to pick several).")
    kind = SelectField("Kind", choices=vocab_options(PARTNERSHIP_KINDS), coerce=none_if_blank,
                       validate_choice=False,
                       description="Experiential, content engagement and research investment are "
                                   "the FasterCures partnership types.")
    status = SelectField("Status", choices=vocab_options(PARTNERSHIP_STATUSES),
                         coerce=none_if_blank, validate_choice=False)
    started_on = _date("Started on")
    ended_on = _date("Ended on", "Leave empty while the partnership goes on.")
    agreement_signed_on = _date(
        "Written agreement signed on",
        "The agreement states the objective, parties and roles, timeframe, amounts and "
        "signatories. Every support entry needs one behind it.")
    ip_terms_agreed = BooleanField("Intellectual-property terms agreed",
                                   description="Settle them from the beginning, above all in "
                                               "research partnerships.")
    data_sharing_terms = TextAreaField("Data-sharing terms", filters=[strip_or_none])
    independence_measures = TextAreaField(
        "Independence measures", filters=[strip_or_none],
        description="How the patient group keeps its independence, e.g. several funders, no "
                    "say over its positions.")
    policy_reference = StringField("Policy reference", filters=[strip_or_none],
                                   validators=[Optional(), Length(max=300)],
                                   description="The co-created procedure (SOP) the partnership "
                                               "follows.")
    evaluation = TextAreaField("Evaluation", filters=[strip_or_none],
                               description="Lessons learned, written when the partnership "
                                           "closes, and shared with both sides.")
    reason = StringField("Reason for the change", validators=[Optional(), Length(max=500)],
                         description="Kept in the audit trail.")
    version = HiddenField()


GROUPS = [
    ("Parties", "A standing relationship between one sponsor and one patient group; more "
                "organisations may take part.",
     ["title", "sponsor_id", "patient_group_id", "other_organisation_ids"]),
    ("The relationship", "Observable, open and long-term rather than transactional.",
     ["kind", "status", "started_on", "ended_on"]),
    ("Agreement and terms", "Written agreements behind every support; clear IP and data terms "
                            "from the beginning.",
     ["agreement_signed_on", "ip_terms_agreed", "data_sharing_terms", "independence_measures",
      "policy_reference"]),
    ("Review and learn", None, ["evaluation"]),
]


class PartnershipFilterForm(FlaskForm):
    class Meta:
        csrf = False

    q = StringField("Search titles and policy references", validators=[Optional()])
    status = SelectField("Status", choices=vocab_options(PARTNERSHIP_STATUSES, "Any status"),
                         coerce=none_if_blank, validate_choice=False)
    kind = SelectField("Kind", choices=vocab_options(PARTNERSHIP_KINDS, "Any kind"),
                       coerce=none_if_blank, validate_choice=False)
    organisation_id = RecordSelectField("Organisation", coerce=int_or_none)


class SupportForm(FlaskForm):
    recipient_id = SelectField("Recipient", coerce=int_or_none, validate_choice=False,
                               description="The organisation that received the support.")
    paid_on = DateField("Paid or provided on", validators=[DataRequired(
        message="Enter the date the support was paid or provided.")])
    kind = SelectField("Kind", choices=vocab_options(SUPPORT_KINDS), coerce=none_if_blank,
                       validate_choice=False)
    # Text, not a decimal field: the service gives the one message for a value that is not a
    # number, for the form, the API and imports alike.
    amount = StringField("Amount", filters=[strip_or_none],
                         description="Up to two decimals, without thousands separators. Leave "
                                     "empty only for in-kind support that cannot be valued.")
    currency = StringField("Currency", filters=[upper_or_none], default="EUR",
                           description="ISO 4217 code, such as EUR, GBP or USD.")
    description = TextAreaField(
        "Description", filters=[strip_or_none],
        description="Clear enough for a reader of the public report to understand the nature of "
                    "the support; for in-kind support that cannot be valued, describe the "
                    "benefit.")
    agreement_id = SelectField("Paid under the agreement", coerce=int_or_none,
                               validate_choice=False,
                               description="The written agreement of this partnership the "
                                           "support is given under.")
    reason = StringField("Reason for the change", validators=[Optional(), Length(max=500)],
                         description="Kept in the audit trail.")
    version = HiddenField()


class SupportFilterForm(FlaskForm):
    class Meta:
        csrf = False

    partnership_id = RecordSelectField("Partnership", coerce=int_or_none)
    recipient_id = RecordSelectField("Recipient", coerce=int_or_none)
    year = SelectField("Year", coerce=int_or_none, validate_choice=False)
    kind = SelectField("Kind", choices=vocab_options(SUPPORT_KINDS, "Any kind"),
                       coerce=none_if_blank, validate_choice=False)
    confirmation = SelectField("Partner's answer",
                               choices=vocab_options(CONFIRMATION_STATES, "Any answer"),
                               coerce=none_if_blank, validate_choice=False)
