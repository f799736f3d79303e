"""Record, edit, void and find organisations; the one place organisation input is validated."""

import re
from dataclasses import dataclass

from marshmallow import ValidationError as SchemaError
from marshmallow import fields, post_load, pre_load, validates_schema
from marshmallow.validate import Length, Range
from sqlalchemy import func, or_, select

from .. import audit
from ..database import utcnow
from ..errors import Conflict, NotFound, ValidationFailed
from ..extensions import db
from ..pagination import Page
from ..partnerships.models import Partnership, partnership_members
from ..permissions import (
    can_add_organisations,
    can_edit_organisations,
    can_record_yearly_figures,
    organisation_scope,
    require,
)
from ..records import refuse_stale
from ..validation import (
    LONG_TEXT_MAX,
    Input,
    change_reason,
    choice,
    country,
    currency,
    load,
    money,
    required,
    required_text,
    text,
    texts,
)
from ..vocabulary import ORGANISATION_KINDS
from .models import GroupYearlyFigures, Organisation

# The methodology note of an organisation's transparency reports (reports.services writes it).
METHODOLOGY_MAX = LONG_TEXT_MAX


class OrganisationInput(Input):
    name = required_text(200)
    kind = choice(ORGANISATION_KINDS, required=True,
                  error_messages={"required": "This field is required.",
                                  "null": "This field is required."})
    country = country(allow_none=True, load_default=None)
    website = fields.Url(schemes={"http", "https"}, allow_none=True, load_default=None,
                         validate=Length(max=300),
                         error_messages={"invalid": "Enter a web address starting with "
                                                    "http:// or https://."})
    disease_areas = texts(100, 50)
    annual_income = money(allow_none=True, load_default=None)
    income_currency = currency(allow_none=True, load_default=None)
    methodology_note = text(METHODOLOGY_MAX, allow_none=True, load_default=None)
    external_id = text(100, allow_none=True, load_default=None)

    @pre_load
    def split_disease_areas(self, data, **_kwargs):
        """Accept disease areas as a list or as text separated by commas, semicolons or lines."""
        if not isinstance(data, dict) or "disease_areas" not in data:
            return data
        areas = data["disease_areas"]
        if areas is None:
            areas = []
        elif isinstance(areas, str):
            areas = split_list(areas)
        elif isinstance(areas, list) and all(isinstance(a, str) for a in areas):
            areas = split_list("\n".join(a.replace(",", " ").replace(";", " ") for a in areas))
        return dict(data, disease_areas=areas)

    @validates_schema
    def check_consistency(self, data, **_kwargs):
        if data.get("annual_income") is not None and not data.get("income_currency"):
            raise SchemaError({"income_currency": ["Give the currency of the annual income."]})

    @post_load
    def tidy_name(self, data, **_kwargs):
        data["name"] = " ".join(data["name"].split())
        return data


def split_list(value: str) -> list[str]:
    """Split free text on commas, semicolons and line breaks, dropping blanks and repeats."""
    seen: dict[str, None] = {}
    for part in re.split(r"[,;\n\r]+", value):
        item = " ".join(part.split())
        if item and item.lower() not in {s.lower() for s in seen}:
            seen[item] = None
    return list(seen)


FIELDS = tuple(OrganisationInput().fields)
_schema = OrganisationInput()


def organisation_values(organisation: Organisation) -> dict:
    """Return the record's current values under the names forms, API and imports use."""
    return {name: getattr(organisation, name) for name in FIELDS}


def validate_organisation(values: dict, current: Organisation | None = None) -> dict:
    """Check values, the name's uniqueness and the kind's fit with existing partnerships."""
    clean = load(_schema, values)
    errors: dict[str, list[str]] = {}
    # SQLite's lower() folds ASCII only: match the exact name too, so "Élan" meets "Élan".
    same_name = db.session.scalar(
        select(Organisation).where(or_(Organisation.name == clean["name"],
                                       func.lower(Organisation.name) == clean["name"].lower()),
                                   Organisation.id != (current.id if current else -1))
    )
    if same_name is not None:
        note = " (a voided record)" if same_name.is_void else ""
        errors["name"] = [f"Another organisation is already called “{same_name.name}”{note}."]
    if clean.get("external_id"):
        taken = db.session.scalar(
            select(Organisation.id).where(Organisation.external_id == clean["external_id"],
                                          Organisation.id != (current.id if current else -1))
        )
        if taken:
            errors["external_id"] = ["Another organisation already has this id."]
    if current is not None and clean["kind"] != current.kind:
        errors.update(_kind_change_problems(current, clean["kind"]))
    if errors:
        raise ValidationFailed(errors)
    return clean


def _kind_change_problems(organisation: Organisation, new_kind: str) -> dict[str, list[str]]:
    role_column = {"sponsor": Partnership.sponsor_id,
                   "patient_group": Partnership.patient_group_id}.get(organisation.kind)
    if role_column is None:
        return {}
    titles = db.session.scalars(
        select(Partnership.title).where(role_column == organisation.id,
                                        Partnership.voided_at.is_(None))
        .order_by(Partnership.title).limit(3)
    ).all()
    if not titles:
        return {}
    return {"kind": [f"{organisation.name} is the {organisation.kind} of “{titles[0]}”"
                     f"{' and other partnerships' if len(titles) > 1 else ''}; it must stay a "
                     f"{organisation.kind}, not become {new_kind}."]}


def create_organisation(values: dict, actor) -> Organisation:
    """Record a new organisation."""
    require(can_add_organisations, actor)
    clean = validate_organisation(values)
    organisation = Organisation(**clean, added_by_organisation_id=actor.organisation_id)
    if clean["methodology_note"] is not None:
        _check_methodology_note(organisation, clean["methodology_note"], actor)
    db.session.add(organisation)
    db.session.flush()
    return organisation


def update_organisation(organisation: Organisation, changes: dict, actor,
                        reason: str | None = None,
                        expected_version: int | None = None) -> Organisation:
    """Apply changed fields; the record is re-validated whole."""
    require(can_edit_organisations, actor, organisation)
    if organisation.is_void:
        raise Conflict("This organisation has been voided and can no longer be edited.")
    refuse_stale(organisation, expected_version, "organisation")
    unknown = set(changes) - set(FIELDS)
    if unknown:
        raise ValidationFailed({name: ["Unknown field."] for name in sorted(unknown)})
    clean = validate_organisation(organisation_values(organisation) | changes, organisation)
    if clean["methodology_note"] != organisation.methodology_note:
        clean["methodology_note"] = _check_methodology_note(organisation,
                                                            clean["methodology_note"], actor)
    audit.set_reason(reason)
    for name, value in clean.items():
        if getattr(organisation, name) != value:
            setattr(organisation, name, value)
    db.session.flush()
    return organisation


def _check_methodology_note(organisation: Organisation, note: str, actor) -> str:
    from ..reports.services import checked_methodology_note

    return checked_methodology_note(organisation, note, actor)


def void_organisation(organisation: Organisation, actor, reason: str) -> Organisation:
    """Withdraw an organisation that no live partnership or user depends on."""
    require(can_edit_organisations, actor, organisation)
    if not (reason or "").strip():
        raise ValidationFailed({"reason": ["Say why this organisation is being voided."]})
    if organisation.is_void:
        raise Conflict("This organisation is already void.")
    in_use = db.session.scalar(
        select(func.count()).select_from(Partnership).where(
            involving(organisation.id), Partnership.voided_at.is_(None))
    )
    if in_use:
        raise Conflict(f"{organisation.name} is a party of {in_use} partnership(s) that are not "
                       "void; void or reassign those first.")
    from ..auth.models import User

    users = db.session.scalar(
        select(func.count()).select_from(User).where(User.organisation_id == organisation.id,
                                                     User.voided_at.is_(None))
    )
    if users:
        raise Conflict(f"{users} user account(s) belong to {organisation.name}; move or void "
                       "them first.")
    audit.set_reason(reason)
    organisation.voided_at = utcnow()
    organisation.void_reason = reason.strip()
    db.session.flush()
    return organisation


def involving(organisation_id: int):
    """SQL condition: partnerships the organisation is a party of (in any role)."""
    member_of = select(partnership_members.c.partnership_id).where(
        partnership_members.c.organisation_id == organisation_id)
    return or_(Partnership.sponsor_id == organisation_id,
               Partnership.patient_group_id == organisation_id,
               Partnership.id.in_(member_of))


# --- finding ------------------------------------------------------------------------------


@dataclass(frozen=True)
class OrganisationFilter:
    kind: str | None = None
    country: str | None = None
    q: str | None = None
    include_void: bool = False
    sort: str = "name"
    page: int = 1
    per_page: int = 25


SORTS = {"name": Organisation.name, "kind": Organisation.kind, "country": Organisation.country}


def find_organisations(criteria: OrganisationFilter, viewer) -> Page:
    """Return one page of the organisations the viewer may see that match the criteria."""
    conditions = [organisation_scope(viewer)]
    if not criteria.include_void:
        conditions.append(Organisation.voided_at.is_(None))
    if criteria.kind:
        conditions.append(Organisation.kind == criteria.kind)
    if criteria.country:
        conditions.append(Organisation.country == criteria.country.strip().upper())
    if criteria.q:
        conditions.append(Organisation.name.ilike(f"%{criteria.q.strip()}%"))
    total = db.session.scalar(select(func.count()).select_from(Organisation).where(*conditions))
    column = SORTS.get(criteria.sort.lstrip("-"), Organisation.name)
    order = column.desc() if criteria.sort.startswith("-") else column.asc()
    items = db.session.scalars(
        select(Organisation).where(*conditions).order_by(order, Organisation.id)
        .limit(criteria.per_page).offset((criteria.page - 1) * criteria.per_page)
    ).all()
    return Page(items, total, criteria.page, criteria.per_page)


# --- a patient group's declared yearly figures and its own caps (PART-CONCENTRATION) -----------


def in_partnership_with(organisation_ids, group_id: int) -> bool:
    """Whether one of these organisations is a party of a live partnership with the group."""
    if not organisation_ids:
        return False
    return db.session.scalar(
        select(Partnership.id).where(
            Partnership.patient_group_id == group_id, Partnership.voided_at.is_(None),
            or_(*(involving(organisation_id) for organisation_id in organisation_ids)))
        .limit(1)) is not None


FIRST_YEAR = 2000
PERCENT = Range(min=0, max=100, error="Give a percentage from 0 to 100.")


class YearlyFiguresInput(Input):
    """A patient group's own figures for one calendar year."""

    year = required(fields.Integer, validate=Range(
        min=FIRST_YEAR, max=2999, error=f"Give a calendar year from {FIRST_YEAR}."), metadata={
            "description": "The calendar year the figures are for (not after this year)."})
    industry_support = money(allow_none=True, load_default=None, metadata={
        "description": "The industry support the group received in the year, from every "
                       "company (a decimal string)."})
    income = money(allow_none=True, load_default=None, metadata={
        "description": "The group's total income in the year (a decimal string)."})
    currency = currency(required=True, error_messages={"required": "This field is required.",
                                                       "null": "This field is required."})
    source = required_text(300)

    @validates_schema
    def check_figures(self, data, **_kwargs):
        if data.get("industry_support") is None and data.get("income") is None:
            message = "Give the industry support or the income of the year (or both)."
            raise SchemaError({"industry_support": [message], "income": [message]})
        year = data.get("year")
        if year is not None and year > utcnow().year:
            raise SchemaError({"year": [f"Figures are declared for a year that has begun: "
                                        f"{utcnow().year} at the latest."]})


class YearlyFiguresChanges(YearlyFiguresInput):
    """What a change of one year's figures sends besides them: why, and the version read."""

    reason = change_reason()
    version = fields.Integer(allow_none=True, metadata={
        "description": "The version you read (required, unless If-Match carries its ETag: "
                       "without either the change is refused with 428); the change is refused "
                       "(409) if the figures have changed since."})


class IndustryPolicyInput(Input):
    """A patient group's own caps on one company's share of its funding in a year."""

    own_support_cap_pct = money(allow_none=True, load_default=None, validate=PERCENT)
    own_income_cap_pct = money(allow_none=True, load_default=None, validate=PERCENT)


YEARLY_FIGURES_FIELDS = tuple(YearlyFiguresInput().fields)
INDUSTRY_POLICY_FIELDS = tuple(IndustryPolicyInput().fields)
_figures_schema = YearlyFiguresInput()
_policy_schema = IndustryPolicyInput()


def yearly_figures_values(figures: GroupYearlyFigures) -> dict:
    """The figures under the names the form and the API use."""
    return {name: getattr(figures, name) for name in YEARLY_FIGURES_FIELDS}


def yearly_figures_of(group: Organisation) -> list[GroupYearlyFigures]:
    """The group's live yearly figures, latest year first."""
    return list(db.session.scalars(
        select(GroupYearlyFigures).where(GroupYearlyFigures.organisation_id == group.id,
                                         GroupYearlyFigures.voided_at.is_(None))
        .order_by(GroupYearlyFigures.year.desc())))


def figures_for_year(group: Organisation, year) -> GroupYearlyFigures | None:
    if not isinstance(year, int) or isinstance(year, bool):
        return None
    return db.session.scalar(select(GroupYearlyFigures).where(
        GroupYearlyFigures.organisation_id == group.id, GroupYearlyFigures.year == year,
        GroupYearlyFigures.voided_at.is_(None)))


def figures_text(figures: GroupYearlyFigures) -> str:
    """The figures of a year as a person reads them."""
    parts = [f"industry support {_money_or_none(figures.currency, figures.industry_support)}",
             f"income {_money_or_none(figures.currency, figures.income)}"]
    return f"{', '.join(parts)} ({figures.source})"


def _money_or_none(currency_code: str, amount) -> str:
    return "not given" if amount is None else f"{currency_code} {amount:,.2f}"


def _require_group_recorder(group: Organisation, actor) -> None:
    require(can_record_yearly_figures, actor, group)
    audit.set_actor(actor)


def record_yearly_figures(group: Organisation, values: dict, actor, reason: str | None = None,
                          expected_version: int | None = None,
                          replacing: bool = True) -> GroupYearlyFigures:
    """Record the group's figures for a year and re-check its partnerships. A second entry for
    a year already recorded changes its figures, with a reason (never silently); `replacing`
    False refuses it instead (the API's POST: a change is a PATCH with the version read)."""
    _require_group_recorder(group, actor)
    clean = load(_figures_schema, values)
    existing = figures_for_year(group, clean["year"])
    if existing is None:
        audit.set_reason(reason)
        figures = GroupYearlyFigures(organisation_id=group.id, **clean)
        db.session.add(figures)
        db.session.flush()
    elif not replacing:
        raise Conflict(f"Figures for {clean['year']} are already recorded ({figures_text(existing)}"
                       f"). Change them with PATCH …/yearly-figures/{clean['year']}, sending "
                       "their version and a reason. Nothing was saved.")
    else:
        figures = _change_figures(existing, clean, reason, expected_version)
    reevaluate_partnerships_of(group)
    return figures


def update_yearly_figures(figures: GroupYearlyFigures, changes: dict, actor,
                          reason: str | None = None,
                          expected_version: int | None = None) -> GroupYearlyFigures:
    """Change some of a year's figures (the year stays), with a reason; re-check the group's
    partnerships."""
    group = figures.organisation
    _require_group_recorder(group, actor)
    unknown = sorted(set(changes) - set(YEARLY_FIGURES_FIELDS))
    if unknown:
        raise ValidationFailed({name: ["Unknown field."] for name in unknown})
    if "year" in changes and changes["year"] != figures.year:
        raise ValidationFailed({"year": ["The year of recorded figures does not change: record "
                                         "the other year's figures on their own."]})
    clean = load(_figures_schema, yearly_figures_values(figures) | changes)
    _change_figures(figures, clean, reason, expected_version)
    reevaluate_partnerships_of(group)
    return figures


def _change_figures(figures: GroupYearlyFigures, clean: dict, reason: str | None,
                    expected_version: int | None) -> GroupYearlyFigures:
    if not (reason or "").strip():
        raise ValidationFailed({"reason": [
            f"Figures for {figures.year} are already recorded ({figures_text(figures)}): say "
            "why they change (kept in the audit trail)."]})
    refuse_stale(figures, expected_version, "year's figures")
    audit.set_reason(reason.strip())
    for name, value in clean.items():
        if getattr(figures, name) != value:
            setattr(figures, name, value)
    db.session.flush()
    return figures


def industry_policy_values(group: Organisation) -> dict:
    return {name: getattr(group, name) for name in INDUSTRY_POLICY_FIELDS}


def set_industry_policy(group: Organisation, values: dict, actor, reason: str | None = None,
                        expected_version: int | None = None) -> Organisation:
    """Record the group's own caps (empty: the policy's defaults apply) and re-check its
    partnerships."""
    _require_group_recorder(group, actor)
    refuse_stale(group, expected_version, "organisation")
    clean = load(_policy_schema, values)
    audit.set_reason(reason)
    for name, value in clean.items():
        if getattr(group, name) != value:
            setattr(group, name, value)
    db.session.flush()
    reevaluate_partnerships_of(group)
    return group


def reevaluate_partnerships_of(group: Organisation) -> None:
    """Re-check the group's partnerships against the rules that read its funding."""
    from ..rules.evaluation import (
        FACTS_FROM_SUPPORT,
        current_policy,
        evaluate_partnership_ids,
        today_utc,
    )

    ids = set(db.session.scalars(select(Partnership.id).where(
        Partnership.patient_group_id == group.id)))
    evaluate_partnership_ids(ids, current_policy(), today_utc(), moved=FACTS_FROM_SUPPORT)


def figures_or_404(group: Organisation, year: int) -> GroupYearlyFigures:
    figures = figures_for_year(group, year)
    if figures is None:
        raise NotFound(f"No figures of {group.name} are recorded for {year}.")
    return figures
