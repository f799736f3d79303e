"""What the JSON API reads and answers, described once for the serialiser and the OpenAPI document.

Request bodies are the services' own input schemas (the one place values are validated); the
answers are derived from those same schemas, so a field cannot be named or typed differently on
the way in and on the way out.
"""

from datetime import UTC, datetime

from marshmallow import Schema, fields
from marshmallow.validate import ContainsOnly, Length, OneOf, Range

from ..interactions.services import InteractionInput
from ..organisations.services import OrganisationInput, YearlyFiguresChanges, YearlyFiguresInput
from ..partnerships.services import PartnershipInput, SupportInput
from ..validation import MAX_INTEGER, NOTE_MAX, change_reason
from ..vocabulary import (
    APPROVAL_DECISIONS,
    CONFIRMATION_STATES,
    DIMENSIONS,
    FLAG_STATES,
    SEVERITIES,
)

# Ids are integer columns, 32-bit on PostgreSQL: larger numbers can name no record.
MAX_ID = MAX_INTEGER


class DecimalString(fields.Decimal):
    """Money on the wire: a decimal string with two places, such as "1250.00" (never a float)."""

    def __init__(self, **kwargs):
        super().__init__(places=2, as_string=True, **kwargs)


class UtcDateTime(fields.DateTime):
    """A timestamp on the wire: the database keeps naive UTC, the API says so (+00:00)."""

    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else utc_iso(value)


def utc_iso(value: datetime) -> str:
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()


def list_choices_on_items(self, field, ret, **_kwargs) -> dict:
    """apispec puts a list's allowed values (ContainsOnly) on the array; they belong to items."""
    if isinstance(field, fields.List) and "enum" in ret and isinstance(ret.get("items"), dict):
        ret["items"]["enum"] = ret.pop("enum")
    return {}


def _output_field(field: fields.Field, required: bool = True) -> fields.Field:
    """The answer's version of an input field: same type and vocabulary, null where it may be."""
    options = {"required": required, "allow_none": field.allow_none}
    kept = [v for v in field.validators if isinstance(v, OneOf | ContainsOnly)]
    if kept:
        options["validate"] = kept
    if isinstance(field, fields.Decimal):
        return DecimalString(**options)
    if isinstance(field, fields.List):
        return fields.List(_output_field(field.inner, required=False), **options)
    if isinstance(field, fields.DateTime):
        return UtcDateTime(**options)
    for kind in (fields.Date, fields.Boolean, fields.Integer):
        if isinstance(field, kind):
            return kind(**options)
    return fields.String(**options)


def output_schema(input_schema: type[Schema], name: str, **extra: fields.Field) -> type[Schema]:
    """Build the answer schema of a record from the service input schema that validates it."""
    declared = {key: _output_field(field) for key, field in input_schema().fields.items()}
    declared.update(
        id=fields.Integer(required=True),
        created_at=UtcDateTime(required=True),
        updated_at=UtcDateTime(required=True),
        version=fields.Integer(required=True),
        voided_at=UtcDateTime(required=True, allow_none=True),
        void_reason=fields.String(required=True, allow_none=True),
    )
    declared.update(extra)
    return Schema.from_dict(declared, name=name)


class Flag(Schema):
    """A poor-practice flag raised by a policy rule."""

    id = fields.Integer(required=True)
    rule = fields.String(required=True, metadata={
        "description": "The id of the policy rule that raised it, e.g. `HOW-NO-PROTOCOL`."})
    dimension = fields.String(required=True, validate=OneOf(list(DIMENSIONS)))
    severity = fields.String(required=True, validate=OneOf(list(SEVERITIES)))
    state = fields.String(required=True, validate=OneOf(list(FLAG_STATES)))
    message = fields.String(required=True)


def _confirmation() -> dict:
    return {
        "confirmed_by_partner": fields.String(required=True,
                                              validate=OneOf(list(CONFIRMATION_STATES))),
        "confirmation_note": fields.String(required=True, allow_none=True),
        "dispute_answer": fields.String(required=True, allow_none=True, metadata={
            "description": "Why the reporting side kept the record after the partner's "
                           "dispute (when upheld)"}),
    }


def _flags(description: str) -> fields.List:
    return fields.List(fields.Nested(Flag), required=True, metadata={"description": description})


OrganisationOut = output_schema(OrganisationInput, "Organisation")
YearlyFiguresOut = output_schema(
    YearlyFiguresInput, "GroupYearlyFigures",
    organisation_id=fields.Integer(required=True, metadata={
        "description": "The patient group the figures are of."}),
)
YearlyFiguresPatch = YearlyFiguresChanges
PartnershipOut = output_schema(
    PartnershipInput, "Partnership",
    flags=_flags("Flags of the partnership-level rules (agreement, IP terms, concentration, "
                 "continuity)."),
)
SupportOut = output_schema(SupportInput, "Support", **_confirmation())
class Approval(Schema):
    """A compliance officer's decision on a planned interaction."""

    decision = fields.String(required=True, validate=OneOf(list(APPROVAL_DECISIONS)))
    by = fields.String(required=True, allow_none=True,
                       metadata={"description": "The name of the compliance officer."})
    at = fields.String(required=True, metadata={"description": "When (ISO 8601, UTC)."})
    note = fields.String(required=True, allow_none=True)


InteractionOut = output_schema(
    InteractionInput, "Interaction", **_confirmation(),
    flags=_flags("Flags the policy rules raised on this interaction."),
    approval=fields.Nested(Approval, required=True, allow_none=True, metadata={
        "description": "The decision on the plan (null until one is made); kept once held."}),
    submitted_at=UtcDateTime(required=True, allow_none=True, metadata={
        "description": "When the plan was submitted for approval (null: not submitted)."}),
)


class PlanDecision(Schema):
    """Approve or reject a planned interaction (a note is required to reject)."""

    decision = fields.String(required=True, validate=OneOf(list(APPROVAL_DECISIONS)))
    note = fields.String(allow_none=True, validate=Length(max=NOTE_MAX))


class InteractionPage(Schema):
    items = fields.List(fields.Nested(InteractionOut), required=True)
    total = fields.Integer(required=True)
    page = fields.Integer(required=True)
    per_page = fields.Integer(required=True)


class InteractionChanges(InteractionInput):
    """Only the fields that change, and why (required once the review was signed off)."""

    reason = change_reason()
    version = fields.Integer(allow_none=True, metadata={
        "description": "The version you read (required, unless If-Match carries its ETag: "
                       "without either the change is refused with 428); the change is refused "
                       "(409) if the record has changed since."})


class OrganisationChanges(OrganisationInput):
    """Only the fields that change, and why; `methodology_note` only by a compliance officer
    of the organisation."""

    reason = change_reason()
    version = fields.Integer(allow_none=True, metadata={
        "description": "The version you read (required, unless If-Match carries its ETag: "
                       "without either the change is refused with 428); the change is refused "
                       "(409) if the record has changed since."})


class FlagTransition(Schema):
    state = fields.String(required=True,
                          validate=OneOf(["acknowledged", "remediated", "dismissed"]))
    note = fields.String(allow_none=True, validate=Length(max=NOTE_MAX))


class Activity(Schema):
    code = fields.String(required=True)
    stage = fields.String(required=True)
    name = fields.String(required=True)
    description = fields.String(required=True)
    example = fields.String(required=True, allow_none=True)
    custom = fields.Boolean(required=True)
    organisation_id = fields.Integer(required=True, allow_none=True)
    retired = fields.Boolean(required=True)


class AuditEvent(Schema):
    id = fields.Integer(required=True)
    occurred_at = UtcDateTime(required=True)
    actor_id = fields.Integer(required=True, allow_none=True)
    actor_label = fields.String(required=True)
    action = fields.String(required=True, validate=OneOf(["create", "update", "void",
                                                          "restore"]))
    entity = fields.String(required=True)
    entity_id = fields.Integer(required=True)
    changes = fields.Dict(required=True, metadata={
        "description": "Each changed field: [old value, new value]."})
    reason = fields.String(required=True, allow_none=True)
    prev_hash = fields.String(required=True)
    hash = fields.String(required=True)


class ErrorDetail(Schema):
    message = fields.String(required=True)
    field_errors = fields.Dict(keys=fields.String(), values=fields.List(fields.String()),
                               data_key="fields",
                               metadata={"description": "Each field's problems."})
    current_version = fields.Integer(metadata={
        "description": "With a 409 on a record that changed: the version it is at now."})


class Error(Schema):
    error = fields.Nested(ErrorDetail, required=True)


# --- query strings --------------------------------------------------------------------------


def _id(**kwargs) -> fields.Integer:
    return fields.Integer(validate=Range(min=1, max=MAX_ID), **kwargs)


class InteractionQuery(Schema):
    partnership_id = _id()
    organisation_id = _id()
    date_from = fields.Date(data_key="from", metadata={"description": "Occurred on or after."})
    date_to = fields.Date(data_key="to", metadata={"description": "Occurred on or before."})
    rule = fields.String(validate=Length(min=1, max=60),
                         metadata={"description": "Only interactions with a flag of this rule."})
    state = fields.String(validate=OneOf(list(FLAG_STATES)),
                          metadata={"description": "Only interactions with a flag in this "
                                                   "state (with `rule`: a flag of that rule)."})
    page = fields.Integer(load_default=1, validate=Range(min=1, max=1_000_000))
    per_page = fields.Integer(load_default=25, validate=Range(min=1, max=200))


class OrganisationQuery(Schema):
    kind = fields.String(validate=OneOf(["sponsor", "patient_group", "other"]))
    country = fields.String(validate=Length(equal=2))
    q = fields.String(validate=Length(max=200), metadata={"description": "Part of the name."})


class AuditQuery(Schema):
    entity = fields.String(validate=Length(min=1, max=40),
                           metadata={"description": "interaction, partnership, support, …"})
    entity_id = _id()


class AdherenceQuery(Schema):
    year = fields.Integer(load_default=None, validate=Range(
        2000, 2999, error="Choose a calendar year from 2000."), metadata={
            "description": "The calendar year; this year when left out."})
    organisation_id = fields.Integer(load_default=None, validate=Range(1, MAX_ID))


class AdherenceRow(Schema):
    dimension = fields.String(required=True)
    interactions = fields.Integer(required=True, metadata={
        "description": "Held interactions of the year."})
    met = fields.Integer(required=True, metadata={
        "description": "Of those, with no open or acknowledged flag of the dimension."})
    rate = fields.String(required=True, allow_none=True, metadata={
        "description": "met / interactions, 4 decimals; null without interactions."})


class AdherenceOut(Schema):
    year = fields.Integer(required=True)
    organisation_id = fields.Integer(required=True, allow_none=True)
    items = fields.List(fields.Nested(AdherenceRow), required=True)
