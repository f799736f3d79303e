"""Finding audit events by the filters of the audit trail page and its exports."""

from dataclasses import dataclass
from datetime import date, datetime, time

from sqlalchemy import Select, select

from ..audit import AuditEvent
from ..errors import NotFound
from ..permissions import audit_scope, history_scope, sees_whole_installation, visible_record


@dataclass(frozen=True)
class AuditFilter:
    entity: str | None = None
    entity_id: int | None = None
    actor: str | None = None
    action: str | None = None
    date_from: date | None = None
    date_to: date | None = None

    @classmethod
    def from_args(cls, args) -> "AuditFilter":
        """Read the filters from query arguments; values that do not parse are ignored."""
        return cls(entity=args.get("entity") or None,
                   entity_id=args.get("entity_id", type=int),
                   actor=args.get("actor") or None,
                   action=args.get("action") or None,
                   date_from=_parse_date(args.get("from")),
                   date_to=_parse_date(args.get("to")))


def _parse_date(value: str | None) -> date | None:
    try:
        return datetime.strptime(value, "%Y-%m-%d").date() if value else None
    except ValueError:
        return None


def require_visible_subject(viewer, entity: str | None, entity_id: int | None) -> None:
    """Refuse, as unknown, the history of a record the viewer may not see."""
    if sees_whole_installation(viewer):
        return
    found = history_scope(entity) if entity else None
    if found is None or entity_id is None or \
            visible_record(found[0], entity_id, found[1], viewer) is None:
        raise NotFound(f"No {entity or 'record'} with this id.")


def events_matching(criteria: AuditFilter, viewer) -> Select:
    """The audit events matching the filters, of the records the viewer may see (unordered)."""
    if criteria.entity and criteria.entity_id:
        require_visible_subject(viewer, criteria.entity, criteria.entity_id)
    query = select(AuditEvent).where(audit_scope(viewer))
    if criteria.entity:
        query = query.where(AuditEvent.entity == criteria.entity)
    if criteria.entity_id:
        query = query.where(AuditEvent.entity_id == criteria.entity_id)
    if criteria.actor:
        query = query.where(AuditEvent.actor_label.ilike(f"%{criteria.actor}%"))
    if criteria.action:
        query = query.where(AuditEvent.action == criteria.action)
    if criteria.date_from:
        query = query.where(AuditEvent.occurred_at >= datetime.combine(criteria.date_from,
                                                                       time.min))
    if criteria.date_to:
        query = query.where(AuditEvent.occurred_at <= datetime.combine(criteria.date_to,
                                                                       time.max))
    return query
