"""The audit trail as people read it: a record's history and the global view."""

from flask import Blueprint, abort, render_template, request
from flask_login import current_user
from sqlalchemy import select

from ..audit import AuditEvent, history_of
from ..extensions import db
from ..security import allow, interaction_scope, partnership_scope
from .services import AuditFilter, events_matching

bp = Blueprint("auditing", __name__, url_prefix="/audit")
PER_PAGE = 50


@bp.route("/")
@allow("compliance", "auditor")
def index():
    page = max(1, request.args.get("page", 1, type=int) or 1)
    query = events_matching(AuditFilter.from_args(request.args))
    events = db.session.scalars(
        query.order_by(AuditEvent.id.desc()).limit(PER_PAGE + 1).offset((page - 1) * PER_PAGE)
    ).all()
    entities = db.session.scalars(select(AuditEvent.entity).distinct()).all()
    return render_template("auditing/index.html", events=events[:PER_PAGE], page=page,
                           has_next=len(events) > PER_PAGE, entities=sorted(entities))


HISTORY_SCOPES = {"interaction": interaction_scope, "partnership": partnership_scope}


@bp.route("/<entity>/<int:entity_id>")
@allow("advocate", "compliance", "auditor")
def history(entity: str, entity_id: int):
    if current_user.role == "advocate":
        _require_visible_to_advocate(entity, entity_id)
    events = history_of(entity, entity_id)
    if not events:
        abort(404)
    return render_template("auditing/history.html", events=events, entity=entity,
                           entity_id=entity_id)


def _require_visible_to_advocate(entity: str, entity_id: int) -> None:
    from ..interactions.models import Interaction
    from ..partnerships.models import Partnership

    models = {"interaction": Interaction, "partnership": Partnership}
    if entity not in models:
        abort(404)
    model = models[entity]
    if db.session.scalar(select(model.id).where(model.id == entity_id,
                                                HISTORY_SCOPES[entity](current_user))) is None:
        abort(404)
