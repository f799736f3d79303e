from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import HiddenField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from ..extensions import db
from ..forms import none_if_blank, options, vocab_options
from ..permissions import organisation_scope, scope_key, sees_whole_installation
from ..vocabulary import ORGANISATION_KINDS
from ..widgets import record_choices
from .models import Organisation


def organisation_choices(kind: str | None = None, blank: str | None = None,
                         *conditions) -> list:
    """The live organisations (of one kind, meeting the conditions) as options by name, after a
    blank one if labelled."""
    query = select(Organisation.id, Organisation.name).where(Organisation.voided_at.is_(None),
                                                             *conditions)
    if kind:
        query = query.where(Organisation.kind == kind)
    rows = db.session.execute(query.order_by(Organisation.name)).all()
    return options(([("", blank)] if blank is not None else []) + [tuple(row) for row in rows])


def organisation_filter_choices(blank: str):
    """A filter's options: the organisations the current user may see (rendered once per
    scope while organisations and partnerships do not change)."""
    from ..partnerships.models import Partnership, partnership_members

    if sees_whole_installation(current_user) or current_user.role == "admin":
        return record_choices(Organisation, Organisation.name, blank)
    return record_choices(Organisation, Organisation.name, blank,
                          organisation_scope(current_user), scope_key=scope_key(current_user),
                          depends_on=(Partnership, partnership_members))


def visible_organisations() -> tuple:
    """The conditions of the organisations the current user may see (none: every one)."""
    if sees_whole_installation(current_user):
        return ()
    return (organisation_scope(current_user),)


def party_choices(kind: str, blank: str) -> list:
    """The organisations the current user may name as a party of a partnership: every live one
    of the kind (the directory of parties), but only their own when it is of that kind (a
    sponsor's people record their sponsor's partnerships, a patient group's their group's)."""
    own = current_user.organisation
    if own is not None and own.kind == kind and not sees_whole_installation(current_user):
        return organisation_choices(kind, blank, Organisation.id == own.id)
    return organisation_choices(kind, blank)


def strip_or_none(value):
    return value.strip() or None if isinstance(value, str) else value


def upper_or_none(value):
    value = strip_or_none(value)
    return value.upper() if isinstance(value, str) else value


class OrganisationForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=200)])
    kind = SelectField("Kind", choices=vocab_options(ORGANISATION_KINDS), coerce=none_if_blank,
                       validate_choice=False)
    country = StringField("Country", filters=[upper_or_none], validators=[Optional()],
                          description="Two-letter ISO 3166 code, such as GB, US or DE.")
    website = StringField("Website", filters=[strip_or_none], validators=[Optional()],
                          description="The full address, starting with https://.")
    disease_areas = TextAreaField(
        "Disease areas", filters=[strip_or_none],
        description="Separate areas with commas or put one per line. Membership of a "
                    "disease-specific group can be health data: record areas, not people.")
    # Text, not a decimal field: the service gives the one message for a value that is not a
    # number, for the form, the API and imports alike.
    annual_income = StringField(
        "Annual income", filters=[strip_or_none], validators=[Optional()],
        description="For patient groups: lets reports show a sponsor's share of the group's "
                    "income.")
    income_currency = StringField("Income currency", filters=[upper_or_none],
                                  validators=[Optional()],
                                  description="ISO 4217 code, such as EUR or GBP.")
    reason = StringField("Reason for the change", validators=[Optional(), Length(max=500)],
                         description="Kept in the audit trail.")
    version = HiddenField()


def disease_areas_text(areas: list | None) -> str:
    return "\n".join(areas or [])


class OrganisationFilterForm(FlaskForm):
    class Meta:
        csrf = False

    q = StringField("Search names", validators=[Optional()])
    kind = SelectField("Kind", choices=vocab_options(ORGANISATION_KINDS, "Any kind"),
                       coerce=none_if_blank, validate_choice=False)
    country = StringField("Country", filters=[upper_or_none], validators=[Optional()])


def year_or_text(value):
    """A year typed in the form as a whole number; other text as it is, for the service to
    refuse on its field."""
    value = strip_or_none(value)
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    return value


class YearlyFiguresForm(FlaskForm):
    # Text fields, not number fields: the service gives the one message for a value that is not
    # a number, for the form and the API alike.
    year = StringField("Calendar year", filters=[year_or_text], validators=[Optional()],
                       description="The year the figures are for, such as 2025.")
    industry_support = StringField(
        "Industry support received", filters=[strip_or_none], validators=[Optional()],
        description="From every company together, in the year (as in the group's accounts).")
    income = StringField("Total income", filters=[strip_or_none], validators=[Optional()],
                         description="All the group's income in the year.")
    currency = StringField("Currency", filters=[upper_or_none], validators=[Optional()],
                           description="ISO 4217 code, such as EUR or GBP.")
    source = StringField("Source", filters=[strip_or_none], validators=[Optional()],
                         description="Where the figures come from, such as “published accounts "
                                     "2025”.")
    reason = StringField("Reason for the change", filters=[strip_or_none],
                         validators=[Optional(), Length(max=1000)],
                         description="Needed when the year's figures are already recorded; "
                                     "kept in the audit trail.")
    version = HiddenField()


class IndustryPolicyForm(FlaskForm):
    own_support_cap_pct = StringField(
        "Most one company may give of the industry support (%)", filters=[strip_or_none],
        validators=[Optional()],
        description="Leave empty to use the policy's limit.")
    own_income_cap_pct = StringField(
        "Most one company may give of the income (%)", filters=[strip_or_none],
        validators=[Optional()], description="Leave empty to use the policy's limit.")
    reason = StringField("Reason for the change", filters=[strip_or_none],
                         validators=[Optional(), Length(max=1000)],
                         description="Kept in the audit trail.")
    version = HiddenField()
