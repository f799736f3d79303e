"""The API's routes under /api/v1: load, check access, call the service, answer in JSON.

Every write goes through the same service as the HTML forms and the CSV import, so validation
lives in one place. A rejected request is rolled back whole: it changes nothing.
"""

import json
import threading
from contextlib import contextmanager

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    current_app,
    jsonify,
    request,
    stream_with_context,
)
from flask.views import MethodView
from flask_login import current_user
from flask_smorest import Api
from flask_smorest import Blueprint as ApiBlueprint
from marshmallow import RAISE
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError
from webargs.flaskparser import FlaskParser

from ..audit import AuditEvent
from ..auditing.services import require_visible_subject
from ..database import read_before_writing, utcnow
from ..errors import (
    Conflict,
    DomainError,
    NotAllowed,
    StaleVersion,
    ValidationFailed,
    VersionRequired,
    etag,
    etag_of,
)
from ..extensions import db
from ..interactions import services as interaction_services
from ..interactions.models import Interaction
from ..operations.failures import CHANGED
from ..operations.inputs import read_json, refusal_of, unstorable_field_in
from ..organisations import services as organisation_services
from ..organisations.models import Organisation
from ..partnerships import services as partnership_services
from ..partnerships.models import Partnership, Support
from ..permissions import (
    allow,
    audit_scope,
    can_add_organisations,
    can_approve_plans,
    can_edit_organisations,
    can_edit_records,
    can_read_activities,
    can_read_audit_trail,
    can_read_history,
    can_read_organisations,
    can_read_records,
    can_read_yearly_figures,
    can_record_yearly_figures,
    can_resolve_flags,
    can_review,
    can_submit_plans,
    flag_scope,
    interaction_scope,
    organisation_scope,
    partnership_scope,
    public,
    support_scope,
    visible_or_404,
)
from ..validation import ChangeNote, RecordId, flatten_messages, load
from . import schemas
from .serialise import (
    audit_event_json,
    interaction_json,
    organisation_json,
    partnership_json,
    support_json,
    yearly_figures_json,
)

API_VERSION = "1.0.0"

bp = Blueprint("api", __name__, url_prefix="/api/v1")


class MalformedRequest(DomainError):
    """The request cannot be read: not JSON, not an object, or a field the API does not know."""

    status = 400


class QueryParser(FlaskParser):
    """Query strings are read with the API's schemas, answered in its error shape: an unknown
    parameter answers 400 (as an unknown field does), a bad value 422."""

    DEFAULT_UNKNOWN_BY_LOCATION = {**FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION,
                                   "query": RAISE, "querystring": RAISE}

    def handle_error(self, error, req, schema, *, error_status_code, error_headers):
        messages = error.messages
        if isinstance(messages, dict) and len(messages) == 1:
            messages = next(iter(messages.values()))  # drop webargs' location level
        problems = flatten_messages(messages)
        unknown = sorted(name for name, reasons in problems.items() if "Unknown field." in reasons)
        if unknown:
            raise MalformedRequest(f"Unknown query parameter{'s' if len(unknown) > 1 else ''}: "
                                   f"{', '.join(unknown)}.", problems)
        raise ValidationFailed(problems, "Some query parameters are not valid.")


def registered_name(schema_class) -> str:
    """A schema by the name marshmallow registered it under, which the OpenAPI document resolves
    to the same component. flask-smorest deep-copies a route's documentation at every decorator;
    a name is copied for nothing, a schema instance field by field."""
    return f"{schema_class.__module__}.{schema_class.__name__}"


class ResourceBlueprint(ApiBlueprint):
    ARGUMENTS_PARSER = QueryParser()


class GovernanceApi(Api):
    """flask-smorest for the OpenAPI document; errors keep the shape errors.py gives them.

    The routes are registered at start-up; their documentation is written into the OpenAPI
    document when it is first asked for, so that no worker or command pays for it unasked.
    """

    ERROR_SCHEMA = schemas.Error

    def __init__(self, *args, **kwargs):
        self._undocumented: list[tuple[ApiBlueprint, list | None]] = []
        self._documenting = threading.Lock()
        super().__init__(*args, **kwargs)

    def _register_error_handlers(self):
        """errors.py already answers every error of an /api/ path in the API's error shape."""

    def register_blueprint(self, blp, *, parameters=None, **options):
        self._app.extensions["flask-smorest"]["blp_name_to_api"][blp.name] = self
        self._app.register_blueprint(blp, **options)
        self._undocumented.append((blp, parameters))

    def document(self) -> dict:
        """The OpenAPI document, with every resource's routes written in at the first call."""
        with self._documenting:
            while self._undocumented:
                blp, parameters = self._undocumented.pop(0)
                blp.register_views_in_doc(self, self._app, self.spec, name=blp.name,
                                          parameters=parameters)
                self.spec.tag({"name": blp.name, "description": blp.description})
            return self.spec.to_dict()


RESOURCES: list[ResourceBlueprint] = []


def resource(name: str, description: str) -> ResourceBlueprint:
    blueprint = ResourceBlueprint(f"api_{name}", __name__, url_prefix="/api/v1",
                                  description=description)
    RESOURCES.append(blueprint)
    return blueprint


ERROR_MEANINGS = {
    400: "Malformed JSON, not a JSON object, or an unknown field or query parameter.",
    401: "No valid API token (Authorization: Bearer ...).",
    403: "Your role may not do this.",
    404: "No such record, or not one you may see.",
    409: "The record changed since you read it, is void, or a unique value was just taken. "
         "When it changed, `error.current_version` and the `ETag` header give the version it is "
         "at now, and `Retry-After: 0` says another change won while yours waited: look at it, "
         "then send yours again with that version.",
    412: "`If-Match` names no version of this record: send the `ETag` its GET answered.",
    422: "Some values are not valid; `fields` says which and why.",
    428: "No version: send the record's `version` as you read it, or `If-Match` with its `ETag`. "
         "Nothing was saved.",
}

ETAG_HEADER = {"ETag": {"description": 'The version of the record, as a strong ETag: '
                                       '`"<kind>-<id>-v<version>"`, e.g. `"interaction-12-v3"`. '
                                       "Send it back in `If-Match` to change the record.",
                        "schema": {"type": "string"}}}
ERROR_HEADERS = {409: {
    "ETag": {"description": "When the record changed: the ETag of the version it is at now.",
             "schema": {"type": "string"}},
    "Retry-After": {"description": "`0` when another change to the record was saved while "
                                   "this one waited: it may be sent again at once with the "
                                   "current version.", "schema": {"type": "integer"}},
}}
IF_MATCH = {"in": "header", "name": "If-Match", "required": False, "schema": {"type": "string"},
            "description": "The `ETag` of the version you read (instead of `version` in the body)."}


def documented_errors(blueprint: ResourceBlueprint, *codes: int):
    def decorate(view):
        for code in (401, *codes):
            view = blueprint.alt_response(code, schema=registered_name(schemas.Error),
                                          description=ERROR_MEANINGS[code],
                                          headers=ERROR_HEADERS.get(code))(view)
        return view

    return decorate


def request_body(schema, description: str | None = None) -> dict:
    body = {"required": True, "content": {"application/json": {"schema": schema}}}
    if description:
        body["description"] = description
    return {"requestBody": body}


# --- versions: no change without the version it was made to ----------------------------------


class PreconditionFailed(DomainError):
    """If-Match names no version of the record the request changes."""

    status = 412


def tagged(answer: dict, record) -> tuple[dict, dict]:
    """The answer of one record with the version it shows as the ETag header (taken from the
    answer: the record itself may have been expired by the commit since)."""
    return answer, {"ETag": etag(record.audit_entity(), answer["id"], answer["version"])}


def version_sent(record, body_version) -> int:
    """The version the change was made to: `version` in the body or the ETag in If-Match.

    Neither answers 428, as a change without it would overwrite whatever was saved since it
    was read; an If-Match that names another record (or `*`, any version) answers 412."""
    header = _version_in_if_match(record)
    if body_version is not None and header is not None and body_version != header:
        raise ValidationFailed({"version": [f"The body says version {body_version}, If-Match "
                                            f"version {header}: send one."]})
    version = body_version if body_version is not None else header
    if version is None:
        raise VersionRequired(
            "Say which version of the record you changed, so that a change saved since you read "
            "it is not overwritten: send `version` as GET answered it, or an If-Match header "
            "with the ETag GET answered. Nothing was saved.",
            {"version": ["Required: the version you read (or If-Match with the record's "
                         "ETag)."]})
    return version


def _version_in_if_match(record) -> int | None:
    if "If-Match" not in request.headers:
        return None
    prefix = f"{record.audit_entity()}-{record.id}-v"
    versions = [tag.removeprefix(prefix) for tag in request.if_match.as_set()
                if tag and tag.startswith(prefix)]
    versions = [int(tag) for tag in versions if tag.isascii() and tag.isdigit()]
    if not versions:
        raise PreconditionFailed(f"If-Match does not name a version of this record: send the "
                                 f"ETag its GET answered (now {etag_of(record)}).")
    return record.version if record.version in versions else versions[0]


@contextmanager
def editing(record):
    """saving() for a change to a record read before the write began: when another change
    was saved in between, answer 409 with the version the record is at now (and Retry-After:
    0, the change may be sent again at once with that version)."""
    try:
        with saving():
            yield
    except StaleDataError:
        with read_before_writing():
            db.session.refresh(record)
        raise StaleVersion(CHANGED, record, busy=True) from None


def patched(record, update, as_json):
    """A PATCH: the request's changed fields applied by the service's `update`, with the
    `reason` and the `version` read (or If-Match); the record's JSON, tagged with its ETag."""
    changes = json_body()
    note = load(_change_note, {name: changes.pop(name) for name in ("reason", "version")
                               if name in changes})
    reason, version = note["reason"], version_sent(record, note["version"])
    with editing(record):
        update(record, changes, current_user, reason=reason, expected_version=version)
        answer = as_json(record)
    return tagged(answer, record)


# --- reading requests and saving -----------------------------------------------------------

_change_note = ChangeNote()


def json_body() -> dict:
    """Return the request's JSON object, or answer 400 saying what is wrong with it: it cannot
    be read (inputs.read_json), is not an object, or holds text no database keeps."""
    try:
        data = read_json(request.get_data(cache=True))
    except ValueError as error:
        raise MalformedRequest(str(error)) from None
    if not isinstance(data, dict):
        raise MalformedRequest("The request body must be a JSON object of field names and "
                               "values.")
    found = unstorable_field_in(data)
    if found is not None:
        raise MalformedRequest(*refusal_of(*found))
    return data


@contextmanager
def saving():
    """Commit what the block changed; on any error roll everything back and answer it.

    Build the answer inside the block: it then shows the record as this request wrote it (its
    version is the one to send back next), not as another request may have changed it since.
    """
    try:
        yield
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise Conflict("This conflicts with a record saved at the same moment (a name or an "
                       "external_id is already taken). Nothing was saved; try again.") from None
    except ValidationFailed as error:
        db.session.rollback()
        unknown = sorted(name for name, messages in error.fields.items()
                         if "Unknown field." in messages)
        if unknown:
            raise MalformedRequest(f"Unknown field{'s' if len(unknown) > 1 else ''}: "
                                   f"{', '.join(unknown)}. Nothing was saved.",
                                   error.fields) from None
        raise
    except BaseException:
        db.session.rollback()
        raise


# --- organisations -------------------------------------------------------------------------

organisations = resource("organisations", "Sponsors, patient groups and other parties.")


@organisations.route("/organisations")
class Organisations(MethodView):
    @allow(can_read_organisations)
    @organisations.arguments(schemas.OrganisationQuery, location="query")
    @organisations.response(200, schemas.OrganisationOut(many=True))
    @documented_errors(organisations, 400, 403, 422)
    def get(self, query):
        """List the organisations (voided ones left out), by name."""
        criteria = organisation_services.OrganisationFilter(
            kind=query.get("kind"), country=query.get("country"), q=query.get("q"),
            per_page=1_000_000,
        )
        page = organisation_services.find_organisations(criteria, current_user)
        return [organisation_json(organisation) for organisation in page.items]

    @allow(can_add_organisations)
    @organisations.doc(**request_body(schemas.OrganisationInput))
    @organisations.response(201, schemas.OrganisationOut, headers=ETAG_HEADER)
    @documented_errors(organisations, 400, 403, 409, 422)
    def post(self):
        """Record an organisation."""
        values = json_body()
        with saving():
            organisation = organisation_services.create_organisation(values, current_user)
            answer = organisation_json(organisation)
        return tagged(answer, organisation)


@organisations.route("/organisations/<id:organisation_id>")
class OrganisationById(MethodView):
    @allow(can_read_organisations)
    @organisations.response(200, schemas.OrganisationOut, headers=ETAG_HEADER)
    @documented_errors(organisations, 403, 404)
    def get(self, organisation_id: int):
        """One organisation."""
        organisation = visible_or_404(Organisation, organisation_id, organisation_scope)
        return tagged(organisation_json(organisation), organisation)

    @allow(can_edit_organisations)
    @organisations.doc(**request_body(schemas.OrganisationChanges(partial=True),
                                      "Only the fields that change, `reason`, and the `version` "
                                      "you read (or send its ETag in If-Match)."),
                       parameters=[IF_MATCH])
    @organisations.response(200, schemas.OrganisationOut, headers=ETAG_HEADER)
    @documented_errors(organisations, 400, 403, 404, 409, 412, 422, 428)
    def patch(self, organisation_id: int):
        """Change some fields; the organisation is re-validated whole."""
        with read_before_writing():
            organisation = visible_or_404(Organisation, organisation_id, organisation_scope)
        return patched(organisation, organisation_services.update_organisation,
                       organisation_json)


# A patient group's declared yearly figures (PART-CONCENTRATION measures sponsors' shares
# against them).


def _group_or_refuse(organisation_id: int, permission) -> Organisation:
    group = visible_or_404(Organisation, organisation_id, organisation_scope)
    if not permission(current_user, group):
        raise NotAllowed(permission.refusal)
    return group


@organisations.route("/organisations/<id:organisation_id>/yearly-figures")
class YearlyFigures(MethodView):
    @allow(can_read_yearly_figures)
    @organisations.response(200, schemas.YearlyFiguresOut(many=True))
    @documented_errors(organisations, 403, 404)
    def get(self, organisation_id: int):
        """A patient group's declared figures, latest year first."""
        group = _group_or_refuse(organisation_id, can_read_yearly_figures)
        return [yearly_figures_json(figures)
                for figures in organisation_services.yearly_figures_of(group)]

    @allow(can_record_yearly_figures)
    @organisations.doc(**request_body(schemas.YearlyFiguresInput,
                                      "One calendar year's figures; a year already recorded "
                                      "is changed with PATCH (409 here)."))
    @organisations.response(201, schemas.YearlyFiguresOut, headers=ETAG_HEADER)
    @documented_errors(organisations, 400, 403, 404, 409, 422)
    def post(self, organisation_id: int):
        """Record a patient group's figures for a year (by the group's representative or a
        compliance officer of an organisation in partnership with it); its partnerships are
        re-evaluated."""
        with read_before_writing():
            group = _group_or_refuse(organisation_id,
                                     can_record_yearly_figures)
        values = json_body()
        with saving():
            figures = organisation_services.record_yearly_figures(group, values, current_user,
                                                                  replacing=False)
            answer = yearly_figures_json(figures)
        return tagged(answer, figures)


@organisations.route("/organisations/<id:organisation_id>/yearly-figures/<int:year>")
class YearlyFiguresOfYear(MethodView):
    @allow(can_record_yearly_figures)
    @organisations.doc(**request_body(schemas.YearlyFiguresPatch(partial=True),
                                      "Only the figures that change, the `reason` (required) "
                                      "and the `version` you read (or its ETag in If-Match)."),
                       parameters=[IF_MATCH])
    @organisations.response(200, schemas.YearlyFiguresOut, headers=ETAG_HEADER)
    @documented_errors(organisations, 400, 403, 404, 409, 412, 422, 428)
    def patch(self, organisation_id: int, year: int):
        """Change a year's figures, with a reason; the group's partnerships are re-evaluated."""
        with read_before_writing():
            group = _group_or_refuse(organisation_id,
                                     can_record_yearly_figures)
            figures = organisation_services.figures_for_year(group, year)
            if figures is None:
                abort(404)
        return patched(figures, organisation_services.update_yearly_figures,
                       yearly_figures_json)


# --- partnerships and support ----------------------------------------------------------------

partnerships = resource("partnerships", "Standing relationships between a sponsor and a "
                                        "patient group.")


@partnerships.route("/partnerships")
class Partnerships(MethodView):
    @allow(can_edit_records)
    @partnerships.doc(**request_body(schemas.PartnershipInput))
    @partnerships.response(201, schemas.PartnershipOut, headers=ETAG_HEADER)
    @documented_errors(partnerships, 400, 403, 409, 422)
    def post(self):
        """Record a partnership; the answer carries the partnership-level flags."""
        values = json_body()
        with saving():
            partnership = partnership_services.create_partnership(values, current_user)
            answer = partnership_json(partnership)
        return tagged(answer, partnership)


@partnerships.route("/partnerships/<id:partnership_id>")
class PartnershipById(MethodView):
    @allow(can_read_records)
    @partnerships.response(200, schemas.PartnershipOut, headers=ETAG_HEADER)
    @documented_errors(partnerships, 403, 404)
    def get(self, partnership_id: int):
        """One partnership with its flags."""
        partnership = visible_or_404(Partnership, partnership_id, partnership_scope)
        return tagged(partnership_json(partnership), partnership)


supports = resource("supports", "Transfers of value within a partnership (they feed the "
                                "transparency reports).")


@supports.route("/supports")
class Supports(MethodView):
    @allow(can_edit_records)
    @supports.doc(**request_body(schemas.SupportInput,
                                 "`amount` is a decimal string (or number) with at most two "
                                 "places; it may be empty only for in-kind support."))
    @supports.response(201, schemas.SupportOut, headers=ETAG_HEADER)
    @documented_errors(supports, 400, 403, 409, 422)
    def post(self):
        """Record support; the partnership's flags are re-evaluated."""
        values = json_body()
        with saving():
            support = partnership_services.record_support(values, current_user)
            answer = support_json(support)
        return tagged(answer, support)


@supports.route("/supports/<id:support_id>")
class SupportById(MethodView):
    @allow(can_read_records)
    @supports.response(200, schemas.SupportOut, headers=ETAG_HEADER)
    @documented_errors(supports, 403, 404)
    def get(self, support_id: int):
        """One support entry (a voided one only for compliance officers and auditors)."""
        support = visible_or_404(Support, support_id, support_scope)
        return tagged(support_json(support), support)


# --- interactions ---------------------------------------------------------------------------

interactions = resource("interactions", "Meetings, focus groups, advisory boards, surveys, … "
                                        "checked against the good-practice rules.")


@interactions.route("/interactions")
class Interactions(MethodView):
    @allow(can_read_records)
    @interactions.arguments(schemas.InteractionQuery, location="query")
    @interactions.response(200, schemas.InteractionPage)
    @documented_errors(interactions, 400, 403, 422)
    def get(self, query):
        """Find interactions, newest first, one page at a time."""
        criteria = interaction_services.InteractionFilter(
            partnership_id=query.get("partnership_id"),
            organisation_id=query.get("organisation_id"),
            date_from=query.get("date_from"), date_to=query.get("date_to"),
            rule=query.get("rule"), state=query.get("state"),
            page=query["page"], per_page=query["per_page"],
        )
        from ..rules.flags import flags_of_interactions

        page = interaction_services.find_interactions(current_user, criteria)
        flags = flags_of_interactions([item.id for item in page.items])
        return {"items": [interaction_json(item, flags[item.id]) for item in page.items],
                "total": page.total, "page": page.page, "per_page": page.per_page}

    @allow(can_edit_records)
    @interactions.doc(**request_body(schemas.InteractionInput))
    @interactions.response(201, schemas.InteractionOut, headers=ETAG_HEADER)
    @documented_errors(interactions, 400, 403, 409, 422)
    def post(self):
        """Log an interaction; the answer carries the flags the rules raised."""
        values = json_body()
        with saving():
            interaction = interaction_services.log_interaction(values, current_user)
            answer = interaction_json(interaction)
        return tagged(answer, interaction)


@interactions.route("/interactions/<id:interaction_id>")
class InteractionById(MethodView):
    @allow(can_read_records)
    @interactions.response(200, schemas.InteractionOut, headers=ETAG_HEADER)
    @documented_errors(interactions, 403, 404)
    def get(self, interaction_id: int):
        """One interaction with its flags."""
        interaction = visible_or_404(Interaction, interaction_id, interaction_scope)
        return tagged(interaction_json(interaction), interaction)

    @allow(can_edit_records)
    @interactions.doc(**request_body(schemas.InteractionChanges(partial=True),
                                     "Only the fields that change, `reason`, and the `version` "
                                     "you read (or send its ETag in If-Match)."),
                      parameters=[IF_MATCH])
    @interactions.response(200, schemas.InteractionOut, headers=ETAG_HEADER)
    @documented_errors(interactions, 400, 403, 404, 409, 412, 422, 428)
    def patch(self, interaction_id: int):
        """Change some fields; the interaction is re-validated whole and re-evaluated."""
        with read_before_writing():
            interaction = visible_or_404(Interaction, interaction_id, interaction_scope,
                                         interaction_services.loaded_for_editing())
        return patched(interaction, interaction_services.update_interaction, interaction_json)


# Approval before the event: the advocate submits a plan, a compliance officer decides on it.


def _plan_or_404(interaction_id: int):
    with read_before_writing():
        interaction = visible_or_404(Interaction, interaction_id, interaction_scope)
    return interaction


@interactions.route("/interactions/<id:interaction_id>/submission")
class PlanSubmission(MethodView):
    @allow(can_submit_plans)
    @interactions.response(200, schemas.InteractionOut, headers=ETAG_HEADER)
    @documented_errors(interactions, 403, 404, 409)
    def post(self, interaction_id: int):
        """Submit a planned interaction to compliance for approval (no body)."""
        from ..review.approvals import submit_plan

        interaction = _plan_or_404(interaction_id)
        with saving():
            submit_plan(interaction, current_user)
            answer = interaction_json(interaction)
        return tagged(answer, interaction)


@interactions.route("/interactions/<id:interaction_id>/approval")
class PlanApproval(MethodView):
    @allow(can_approve_plans)
    @interactions.doc(**request_body(schemas.PlanDecision))
    @interactions.response(200, schemas.InteractionOut, headers=ETAG_HEADER)
    @documented_errors(interactions, 400, 403, 404, 409, 422)
    def post(self, interaction_id: int):
        """Approve or reject a planned interaction, with a note; the answer carries its
        `approval`. Refused: your own plan (403), a plan whose date has passed (422), a held
        or cancelled interaction (409)."""
        from ..review.approvals import decide_plan

        interaction = _plan_or_404(interaction_id)
        body = json_body()
        unknown = sorted(set(body) - {"decision", "note"})
        if unknown:
            raise MalformedRequest(f"Unknown field{'s' if len(unknown) > 1 else ''}: "
                                   f"{', '.join(unknown)}. Nothing was saved.",
                                   {name: ["Unknown field."] for name in unknown})
        problems = {name: ["Not a valid string."] for name in ("decision", "note")
                    if body.get(name) is not None and not isinstance(body[name], str)}
        if problems:
            raise ValidationFailed(problems)
        with saving():
            decide_plan(interaction, body.get("decision"), body.get("note"), current_user)
            answer = interaction_json(interaction)
        return tagged(answer, interaction)


# --- flags, activities, audit ---------------------------------------------------------------

flags = resource("flags", "Poor-practice flags and their review.")


@flags.route("/flags/<id:flag_id>/transition")
class FlagTransition(MethodView):
    @allow(can_resolve_flags)
    @flags.doc(**request_body(schemas.FlagTransition))
    @flags.response(200, schemas.Flag)
    @documented_errors(flags, 400, 403, 404, 409, 422)
    def post(self, flag_id: int):
        """Acknowledge (keep, with a justification), remediate or dismiss a flag."""
        from ..review.services import transition_flag
        from ..rules.flags import flag_json
        from ..rules.models import Flag

        flag = visible_or_404(Flag, flag_id, flag_scope)
        if flag.is_void:
            abort(404)
        body = json_body()
        unknown = sorted(set(body) - {"state", "note"})
        if unknown:
            raise MalformedRequest(f"Unknown field{'s' if len(unknown) > 1 else ''}: "
                                   f"{', '.join(unknown)}. Nothing was saved.",
                                   {name: ["Unknown field."] for name in unknown})
        problems = {name: ["Not a valid string."] for name in ("state", "note")
                    if body.get(name) is not None and not isinstance(body[name], str)}
        if problems:
            raise ValidationFailed(problems)
        with saving():
            transition_flag(flag, body.get("state"), body.get("note"), current_user)
            answer = flag_json(flag)
        return answer


activities = resource("activities", "The catalogue of engagement activities (CTTI).")


@activities.route("/activities")
class Activities(MethodView):
    @allow(can_read_activities)
    @activities.response(200, schemas.Activity(many=True))
    @documented_errors(activities)
    def get(self):
        """The activity catalogue, then the organisations' own activities open to you (all of
        them for compliance and auditors; otherwise your organisation's and those of the parties
        of your partnerships)."""
        from ..activities.services import activities_open_to

        return [activity.as_dict() for activity in activities_open_to(current_user)]


adherence = resource("adherence", "Adherence per good-practice dimension: the share of the "
                                  "year's held interactions with no open or acknowledged flag "
                                  "of that dimension (the same figure as the pages and the "
                                  "reports).")


@adherence.route("/adherence")
class AdherenceByDimension(MethodView):
    @allow(can_review)
    @adherence.arguments(schemas.AdherenceQuery, location="query")
    @adherence.response(200, schemas.AdherenceOut)
    @documented_errors(adherence, 400, 403, 404, 422)
    def get(self, query):
        """A calendar year's adherence over the interactions you may see, or over one
        organisation's (held by it or within its partnerships)."""
        from ..review.adherence import for_year

        organisation_id = query.get("organisation_id")
        year = query["year"] or utcnow().year
        if organisation_id is not None:
            visible_or_404(Organisation, organisation_id, organisation_scope)
        rows = for_year(current_user, year, organisation_id)
        return {"year": year, "organisation_id": organisation_id,
                "items": [{"dimension": row.dimension, "interactions": row.interactions,
                           "met": row.met, "rate": row.as_report_row()["rate"]}
                          for row in rows]}


audit = resource("audit", "The append-only, hash-chained audit trail.")


@audit.route("/audit")
class Audit(MethodView):
    @allow(can_read_history)
    @audit.arguments(schemas.AuditQuery, location="query")
    @audit.response(200, schemas.AuditEvent(many=True))
    @documented_errors(audit, 400, 403, 404, 422)
    def get(self, query):
        """Audit events, oldest first (advocates: the history of one record they can see)."""
        entity, entity_id = query.get("entity"), query.get("entity_id")
        if not can_read_audit_trail(current_user) and (entity is None or entity_id is None):
            raise NotAllowed("Advocates read the history of one record they can see: give "
                             "entity and entity_id.")
        if entity_id is not None:
            require_visible_subject(current_user, entity, entity_id)
        conditions = [audit_scope(current_user)]
        if entity:
            conditions.append(AuditEvent.entity == entity)
        if entity_id is not None:
            conditions.append(AuditEvent.entity_id == entity_id)
        return Response(stream_with_context(_stream_events(conditions)),
                        mimetype="application/json")


def _stream_events(conditions, batch: int = 1000):
    """Yield the events as one JSON array, a batch at a time (the trail can be long)."""
    table = AuditEvent.__table__
    yield "["
    last_id, first = 0, True
    while True:
        rows = db.session.execute(
            select(table).where(*conditions, table.c.id > last_id).order_by(table.c.id)
            .limit(batch)
        ).mappings().all()
        if not rows:
            break
        for row in rows:
            yield ("" if first else ",") + json.dumps(audit_event_json(row))
            first = False
        last_id = rows[-1]["id"]
    yield "]"


# --- the OpenAPI document -------------------------------------------------------------------


@bp.route("/openapi.json")
@public
def openapi():
    """The OpenAPI 3 document of this API, generated from the code."""
    return jsonify(current_app.extensions["governance_api"].document())


def init_app(app: Flask) -> None:
    app.url_map.converters["id"] = RecordId
    api = GovernanceApi(spec_kwargs={
        "title": "Partnership Governance API",
        "version": API_VERSION,
        "openapi_version": "3.0.3",
        "info": {"description": "JSON in, JSON out, UTF-8. Dates are ISO 8601; money is a "
                                "decimal string with a currency. Authenticate with "
                                "`Authorization: Bearer <token>` (`flask create-token`). "
                                "Answers carry `Cache-Control: no-store`; the links in them "
                                "are absolute, on the server's configured address or else on "
                                "the host the request named (a local one)."},
        "servers": [{"url": "/"}],
        "security": [{"bearerAuth": []}],
    })
    api.init_app(app)
    api.spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer"})
    api.register_converter(RecordId, lambda _converter: {
        "type": "integer", "minimum": 1, "maximum": schemas.MAX_ID})
    api.register_field(schemas.DecimalString, "string", "decimal")
    api.ma_plugin.converter.add_attribute_function(schemas.list_choices_on_items)
    for blueprint in RESOURCES:
        api.register_blueprint(blueprint)
    app.extensions["governance_api"] = api
