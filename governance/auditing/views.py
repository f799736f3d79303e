"""The audit trail as people read it: a record's history and the global view."""

from flask import Blueprint, abort, render_template, request
from flask_login import current_user
from sqlalchemy import select

from ..audit import AuditEvent, history_of
from ..extensions import db
from ..permissions import (
    allow,
    audit_scope,
    can_read_audit_trail,
    can_read_history,
)
from .services import AuditFilter, events_matching, require_visible_subject

bp = Blueprint("auditing", __name__, url_prefix="/audit")
PER_PAGE = 50


@bp.route("/")
@allow(can_read_audit_trail)
def index():
    page = max(1, request.args.get("page", 1, type=int) or 1)
    query = events_matching(AuditFilter.from_args(request.args), current_user)
    events = db.session.scalars(
        query.order_by(AuditEvent.id.desc()).limit(PER_PAGE + 1).offset((page - 1) * PER_PAGE)
    ).all()
    entities = db.session.scalars(select(AuditEvent.entity).distinct()
                                  .where(audit_scope(current_user))).all()
    return render_template("auditing/index.html", events=events[:PER_PAGE], page=page,
                           has_next=len(events) > PER_PAGE, entities=sorted(entities))


@bp.route("/<entity>/<int:entity_id>")
@allow(can_read_history)
def history(entity: str, entity_id: int):
    require_visible_subject(current_user, entity, entity_id)
    events = history_of(entity, entity_id)
    if not events:
        abort(404)
    return render_template("auditing/history.html", events=events, entity=entity,
                           entity_id=entity_id)
