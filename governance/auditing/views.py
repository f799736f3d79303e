"""The audit trail as people read it: a record's history and the global view with export."""

import csv
import io
from datetime import datetime, time

from flask import Blueprint, Response, abort, render_template, request
from flask_login import current_user
from sqlalchemy import select

from ..audit import AuditEvent, history_of
from ..extensions import db
from ..security import allow, interaction_scope, partnership_scope

bp = Blueprint("auditing", __name__, url_prefix="/audit")
PER_PAGE = 50


def _filtered_events():
    query = select(AuditEvent)
    args = request.args
    if args.get("entity"):
        query = query.where(AuditEvent.entity == args["entity"])
    if args.get("entity_id", type=int):
        query = query.where(AuditEvent.entity_id == args.get("entity_id", type=int))
    if args.get("actor"):
        query = query.where(AuditEvent.actor_label.ilike(f"%{args['actor']}%"))
    if args.get("action"):
        query = query.where(AuditEvent.action == args["action"])
    for name, op in (("from", "__ge__"), ("to", "__le__")):
        value = _parse_date(args.get(name))
        if value:
            bound = datetime.combine(value, time.max if name == "to" else time.min)
            query = query.where(getattr(AuditEvent.occurred_at, op)(bound))
    return query


def _parse_date(value):
    try:
        return datetime.strptime(value, "%Y-%m-%d").date() if value else None
    except ValueError:
        return None


@bp.route("/")
@allow("compliance", "auditor")
def index():
    page = max(1, request.args.get("page", 1, type=int) or 1)
    events = db.session.scalars(
        _filtered_events().order_by(AuditEvent.id.desc()).limit(PER_PAGE + 1)
        .offset((page - 1) * PER_PAGE)
    ).all()
    entities = db.session.scalars(select(AuditEvent.entity).distinct()).all()
    return render_template("auditing/index.html", events=events[:PER_PAGE], page=page,
                           has_next=len(events) > PER_PAGE, entities=sorted(entities))


@bp.route("/export.csv")
@allow("compliance", "auditor")
def export_csv():
    from ..spreadsheets import safe_cell

    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["id", "occurred_at_utc", "actor", "action", "entity", "entity_id",
                     "changes", "reason", "prev_hash", "hash"])
    for event in db.session.scalars(_filtered_events().order_by(AuditEvent.id)):
        writer.writerow([safe_cell(v) for v in (
            event.id, event.occurred_at.isoformat(), event.actor_label, event.action,
            event.entity, event.entity_id, event.changes, event.reason or "", event.prev_hash,
            event.hash)])
    return Response(buffer.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": "attachment; filename=audit-trail.csv"})


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
