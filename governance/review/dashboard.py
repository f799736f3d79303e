"""The compliance dashboard: adherence per dimension, flags over time, the oldest open flags."""

from datetime import date

from sqlalchemy import func, select

from ..extensions import db
from ..interactions.models import Interaction
from ..permissions import flag_scope, interaction_scope
from ..rules.models import Flag
from ..vocabulary import FLAG_STATES
from .adherence import Adherence, for_viewer
from .services import QueueFilter, flag_queue


def _period_conditions(viewer, date_from: date | None, date_to: date | None,
                       partnership_id: int | None) -> list:
    conditions = [Interaction.voided_at.is_(None), interaction_scope(viewer)]
    if date_from:
        conditions.append(Interaction.occurred_on >= date_from)
    if date_to:
        conditions.append(Interaction.occurred_on <= date_to)
    if partnership_id:
        conditions.append(Interaction.partnership_id == partnership_id)
    return conditions


def adherence(viewer, date_from: date | None = None, date_to: date | None = None,
              partnership_id: int | None = None) -> list[Adherence]:
    """Per dimension, the share of the viewer's held interactions of the period with no open
    or acknowledged flag in it (review/adherence.py: the one definition)."""
    return for_viewer(viewer, date_from, date_to, partnership_id)


def flags_over_time(viewer, date_from: date | None = None, date_to: date | None = None,
                    partnership_id: int | None = None) -> list[tuple[str, dict[str, int]]]:
    """Flags on the viewer's interactions of the period per month of the interaction, by
    state."""
    conditions = _period_conditions(viewer, date_from, date_to, partnership_id)
    month = func.strftime("%Y-%m", Interaction.occurred_on) \
        if db.engine.dialect.name == "sqlite" else func.to_char(Interaction.occurred_on,
                                                                 "YYYY-MM")
    rows = db.session.execute(
        select(month.label("month"), Flag.state, func.count())
        .join(Interaction, Interaction.id == Flag.interaction_id)
        .where(*conditions, Flag.voided_at.is_(None))
        .group_by("month", Flag.state).order_by("month")
    ).all()
    series: dict[str, dict[str, int]] = {}
    for month_key, state, count in rows:
        series.setdefault(month_key, dict.fromkeys(FLAG_STATES, 0))[state] = count
    return sorted(series.items())


def oldest_open_flags(viewer, limit: int = 10, partnership_id: int | None = None) -> list[Flag]:
    return flag_queue(QueueFilter(partnership_id=partnership_id, per_page=limit), viewer).items


def open_flag_counts_by_severity(viewer) -> dict[str, int]:
    return dict(db.session.execute(
        select(Flag.severity, func.count()).where(Flag.state == "open",
                                                  Flag.voided_at.is_(None), flag_scope(viewer))
        .group_by(Flag.severity)
    ).all())
