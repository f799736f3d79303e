"""The compliance dashboard: adherence per dimension, flags over time, the oldest open flags."""

from dataclasses import dataclass
from datetime import date

from sqlalchemy import and_, func, select

from ..extensions import db
from ..interactions.models import Interaction
from ..permissions import flag_scope, interaction_scope
from ..rules.models import Flag
from ..vocabulary import DIMENSIONS, FLAG_STATES
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


@dataclass(frozen=True)
class Adherence:
    dimension: str
    label: str
    interactions: int
    flagged: int

    @property
    def share(self) -> float | None:
        """Share of interactions with no open flag in this dimension (None without any)."""
        if not self.interactions:
            return None
        return (self.interactions - self.flagged) / self.interactions


def adherence(viewer, date_from: date | None = None, date_to: date | None = None,
              partnership_id: int | None = None) -> list[Adherence]:
    """Per dimension, how many of the viewer's interactions of the period carry no open flag
    in it.

    An interaction counts as flagged in a dimension when it, or its partnership, has an open
    flag of that dimension (partnership-level rules judge the relationship it belongs to).
    """
    conditions = _period_conditions(viewer, date_from, date_to, partnership_id)
    total = db.session.scalar(select(func.count()).select_from(Interaction).where(*conditions))
    open_flag = and_(Flag.state == "open", Flag.voided_at.is_(None))
    own = select(Flag.interaction_id.label("iid"), Flag.dimension.label("dim")).where(
        open_flag, Flag.interaction_id.is_not(None))
    via_partnership = (
        select(Interaction.id.label("iid"), Flag.dimension.label("dim"))
        .join(Flag, Flag.partnership_id == Interaction.partnership_id)
        .where(open_flag)
    )
    union = own.union(via_partnership).subquery()
    flagged = dict(db.session.execute(
        select(union.c.dim, func.count(func.distinct(union.c.iid)))
        .join(Interaction, Interaction.id == union.c.iid)
        .where(*conditions)
        .group_by(union.c.dim)
    ).all())
    return [Adherence(key, label, total, flagged.get(key, 0)) for key, label in DIMENSIONS.items()]


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
