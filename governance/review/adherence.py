"""Adherence, one definition everywhere (the compliance home, the dashboard, the reports, the
API): per good-practice dimension, the share of the period's HELD interactions with no open or
acknowledged flag of that dimension, on the interaction itself or on its partnership (whose
rules judge the relationship it belongs to). A dismissed flag did not apply; a remediated one
was put right; a voided flag or interaction counts for nothing."""

from dataclasses import dataclass
from datetime import date

from sqlalchemy import and_, case, func, select

from ..extensions import db
from ..interactions.models import Interaction
from ..permissions import interaction_scope
from ..rules.models import Flag
from ..vocabulary import DIMENSIONS

COUNTED_STATES = ("open", "acknowledged")


@dataclass(frozen=True)
class Adherence:
    dimension: str
    label: str
    interactions: int
    flagged: int  # with an open or acknowledged flag of the dimension
    with_open_flag: int  # of those, with an open one

    @property
    def met(self) -> int:
        return self.interactions - self.flagged

    @property
    def share(self) -> float | None:
        return None if not self.interactions else self.met / self.interactions

    @property
    def percent(self) -> int | None:
        return None if self.share is None else round(self.share * 100)

    def as_report_row(self) -> dict:
        return {"id": f"adherence-{self.dimension}", "dimension": self.dimension,
                "interactions": self.interactions, "with_open_flag": self.with_open_flag,
                "kept_with_justification": self.flagged - self.with_open_flag,
                "met": self.met,
                "rate": None if self.share is None else f"{self.share:.4f}"}


def adherence(conditions: list) -> list[Adherence]:
    """Adherence per dimension over the held interactions the conditions select."""
    held = [Interaction.voided_at.is_(None), Interaction.status == "held", *conditions]
    total = db.session.scalar(select(func.count()).select_from(Interaction).where(*held)) or 0
    live = and_(Flag.voided_at.is_(None), Flag.state.in_(COUNTED_STATES))
    own = select(Flag.interaction_id.label("iid"), Flag.dimension.label("dim"),
                 Flag.state.label("state")).where(live, Flag.interaction_id.is_not(None))
    via_partnership = (
        select(Interaction.id.label("iid"), Flag.dimension.label("dim"),
               Flag.state.label("state"))
        .join(Flag, Flag.partnership_id == Interaction.partnership_id)
        .where(live, Flag.interaction_id.is_(None))
    )
    flags = own.union_all(via_partnership).subquery()
    counts = db.session.execute(
        select(flags.c.dim, func.count(func.distinct(flags.c.iid)),
               func.count(func.distinct(case((flags.c.state == "open", flags.c.iid)))))
        .join(Interaction, Interaction.id == flags.c.iid)
        .where(*held)
        .group_by(flags.c.dim)
    ).all()
    found = {dim: (flagged, with_open) for dim, flagged, with_open in counts}
    return [Adherence(key, label, total, *found.get(key, (0, 0)))
            for key, label in DIMENSIONS.items()]


def period_conditions(date_from: date | None, date_to: date | None) -> list:
    conditions = []
    if date_from:
        conditions.append(Interaction.occurred_on >= date_from)
    if date_to:
        conditions.append(Interaction.occurred_on <= date_to)
    return conditions


def for_viewer(viewer, date_from: date | None = None, date_to: date | None = None,
               partnership_id: int | None = None) -> list[Adherence]:
    """The viewer's interactions of a period (and partnership): the home and the dashboard."""
    conditions = [interaction_scope(viewer), *period_conditions(date_from, date_to)]
    if partnership_id:
        conditions.append(Interaction.partnership_id == partnership_id)
    return adherence(conditions)


def for_year(viewer, year: int, organisation_id: int | None = None) -> list[Adherence]:
    """A calendar year of the viewer's interactions, those of one organisation (held by it or
    within its partnerships) when given: the API."""
    conditions = [interaction_scope(viewer),
                  *period_conditions(date(year, 1, 1), date(year, 12, 31))]
    if organisation_id is not None:
        conditions.append(of_organisation(organisation_id))
    return adherence(conditions)


def of_organisation(organisation_id: int):
    """Interactions held by the organisation or within one of its partnerships (as sponsor)."""
    from sqlalchemy import or_

    from ..partnerships.models import Partnership

    return or_(Interaction.organisation_id == organisation_id,
               Interaction.partnership_id.in_(select(Partnership.id).where(
                   Partnership.sponsor_id == organisation_id, Partnership.voided_at.is_(None))))
