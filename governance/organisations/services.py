"""Record, edit, void and find organisations; the one place organisation input is validated."""

import re
from dataclasses import dataclass

from marshmallow import ValidationError as SchemaError
from marshmallow import fields, post_load, pre_load, validates_schema
from marshmallow.validate import Length
from sqlalchemy import func, or_, select

from .. import audit
from ..database import utcnow
from ..errors import Conflict, ValidationFailed
from ..extensions import db
from ..pagination import Page
from ..partnerships.models import Partnership, partnership_members
from ..permissions import (
    can_add_organisations,
    can_edit_organisations,
    organisation_scope,
    require,
)
from ..records import refuse_stale
from ..validation import (
    LONG_TEXT_MAX,
    Input,
    choice,
    country,
    currency,
    load,
    money,
    required_text,
    text,
    texts,
)
from ..vocabulary import ORGANISATION_KINDS
from .models import Organisation

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
