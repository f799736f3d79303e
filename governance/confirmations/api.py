"""POST /api/v1/interactions/{id}/confirmation and POST /api/v1/supports/{id}/confirmation: a
partner's answer to a record, in the OpenAPI document with the interactions and supports they
answer (a resource blueprint of their own would be a tag of its own there)."""

from flask import abort
from flask.views import MethodView
from flask_login import current_user

from ..api import schemas
from ..api.serialise import interaction_json, support_json
from ..api.views import (
    ResourceBlueprint,
    documented_errors,
    interactions,
    json_body,
    request_body,
    saving,
    supports,
)
from ..permissions import allow, can_confirm_records
from . import services

CONFIRMATION_BODY = ("`answer`: `confirmed` or `disputed`; `note`: what is wrong (required to "
                     "dispute). Changing the record later asks the partner again.")


def _answer_for(record, answer_with, as_json) -> dict:
    """The partner's answer (confirm or dispute, with a note) to a record, saved and audited."""
    if record is None:
        abort(404)
    body = json_body()
    with saving():
        answer_with(record, body, current_user)
        answer = as_json(record)
    return answer


def confirmation_route(blueprint: ResourceBlueprint, record_schema):
    """A partner's answer route: partners only, the answer's body in, the record out."""
    decorators = (allow(can_confirm_records),
                  blueprint.doc(**request_body(services.AnswerInput, CONFIRMATION_BODY)),
                  blueprint.response(200, record_schema),
                  documented_errors(blueprint, 400, 403, 404, 409, 422))

    def decorate(view):
        for decorator in reversed(decorators):
            view = decorator(view)
        return view

    return decorate


@interactions.route("/interactions/<id:interaction_id>/confirmation")
class InteractionConfirmation(MethodView):
    @confirmation_route(interactions, schemas.InteractionOut)
    def post(self, interaction_id: int):
        """A partner confirms or disputes an interaction that another party of their
        partnership recorded; disputes reach the compliance queue and the annual report."""
        return _answer_for(services.visible_interaction(current_user, interaction_id),
                           services.answer_interaction, interaction_json)


@supports.route("/supports/<id:support_id>/confirmation")
class SupportConfirmation(MethodView):
    @confirmation_route(supports, schemas.SupportOut)
    def post(self, support_id: int):
        """A partner confirms or disputes a support line their organisation received."""
        return _answer_for(services.visible_support(current_user, support_id),
                           services.answer_support, support_json)
