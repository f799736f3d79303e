"""The year's quality measures, one definition everywhere (the homes and the internal report).

Over the HELD, live interactions of a calendar year that the caller's conditions select (a
viewer's scope, or the interactions a report covers):

- engagement across the lifecycle: held interactions per lifecycle stage, every stage listed
  in lifecycle order, with those whose stage was not recorded;
- the first engagement stage of each partnership of the year: the stage of its earliest held
  interaction ever (within the same conditions, so nothing outside them is read);
- the patient needs served (seed 003): interactions per need, and the needs none served;
- "you said, we did": the interactions that recorded what changed because of the patients'
  input, and whether and when that was shared back;
- PFMD's roles and responsibilities, and capacity and capability: the share of interactions
  whose roles were agreed beforehand, and to whose patients preparation was offered.

The figures come from three statements whatever the number of interactions: one GROUP BY for
the counts, one for the partnerships' first engagement, one for the "you said, we did" lines.
Everything returned is plain JSON-ready data: a report freezes it in its snapshot.
"""

from datetime import date

from sqlalchemy import String, and_, case, cast, func, or_, select
from sqlalchemy.orm import aliased

from ..extensions import db
from ..interactions.models import Interaction
from ..partnerships.models import Partnership
from ..vocabulary import ENGAGEMENT_PRACTICES, LIFECYCLE_STAGES, PATIENT_NEEDS

NOT_RECORDED = "not_recorded"  # the id of the row of interactions without a lifecycle stage


def year_measures(conditions: list, year: int, latest_outcomes: int | None = None) -> dict:
    """The quality measures of the year's held interactions the conditions select.

    `latest_outcomes`: list only that many "you said, we did" lines, the most recent first (a
    home page); None lists them all in date order (a report)."""
    held = _held(conditions) + _within_year(year)
    counts = _counts_by_stage(held)
    total = sum(row["held"] for row in counts.values())
    return {
        "year": year,
        "held": total,
        "lifecycle_stages": _lifecycle_rows(counts),
        "first_engagement": _first_engagement(conditions, held),
        "patient_needs": _needs(counts),
        "you_said_we_did": _you_said_we_did(counts, held, latest_outcomes),
        "practices": _practices(counts, total),
    }


def _held(conditions: list) -> list:
    return [Interaction.voided_at.is_(None), Interaction.status == "held", *conditions]


def _within_year(year: int) -> list:
    return [Interaction.occurred_on >= date(year, 1, 1),
            Interaction.occurred_on <= date(year, 12, 31)]


def _serves(need: str):
    """Whether the interaction's list of patient needs holds this one (the JSON text holds each
    tag in quotes, so one tag cannot match inside another)."""
    return func.coalesce(cast(Interaction.patient_needs, String), "").like(f'%"{need}"%')


def _outcome_recorded():
    return func.length(func.trim(func.coalesce(Interaction.outcome_changes, ""))) > 0


def _number(condition):
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _counts_by_stage(held: list) -> dict[str | None, dict[str, int]]:
    """Per lifecycle stage (None: not recorded), how many held interactions, and of those how
    many served each need, served none, recorded an outcome, shared it, and followed each
    practice: one grouped statement."""
    columns = {
        "held": func.count(),
        **{f"need:{need}": _number(_serves(need)) for need in PATIENT_NEEDS},
        "no_need": _number(~or_(*(_serves(need) for need in PATIENT_NEEDS))),
        "outcomes": _number(_outcome_recorded()),
        "outcomes_shared": _number(and_(_outcome_recorded(),
                                        Interaction.outcomes_shared_on.is_not(None))),
        **{f"practice:{name}": _number(getattr(Interaction, name))
           for name in ENGAGEMENT_PRACTICES},
    }
    rows = db.session.execute(
        select(Interaction.lifecycle_stage, *(column.label(key.replace(":", "_"))
                                              for key, column in columns.items()))
        .where(*held)
        .group_by(Interaction.lifecycle_stage)
    ).all()
    return {row[0]: {key: int(value or 0) for key, value in zip(columns, row[1:], strict=True)}
            for row in rows}


def _summed(counts: dict[str | None, dict[str, int]], key: str) -> int:
    return sum(row[key] for row in counts.values())


def _lifecycle_rows(counts: dict[str | None, dict[str, int]]) -> list[dict]:
    rows = [{"id": f"stage-{stage}", "stage": stage,
             "interactions": counts.get(stage, {}).get("held", 0)}
            for stage in LIFECYCLE_STAGES]
    rows.append({"id": f"stage-{NOT_RECORDED}", "stage": None,
                 "interactions": counts.get(None, {}).get("held", 0)})
    return rows


def _needs(counts: dict[str | None, dict[str, int]]) -> dict:
    by_need = [{"id": f"need-{need}", "need": need,
                "interactions": _summed(counts, f"need:{need}")} for need in PATIENT_NEEDS]
    return {"by_need": by_need,
            "not_served": [row["need"] for row in by_need if not row["interactions"]],
            "interactions_without_needs": _summed(counts, "no_need")}


def _rate(part: int, whole: int) -> str | None:
    return None if not whole else f"{part / whole:.4f}"


def _practices(counts: dict[str | None, dict[str, int]], total: int) -> list[dict]:
    rows = []
    for name in ENGAGEMENT_PRACTICES:
        followed = _summed(counts, f"practice:{name}")
        rows.append({"id": f"practice-{name}", "practice": name, "interactions": followed,
                     "held": total, "rate": _rate(followed, total)})
    return rows


def _first_engagement(conditions: list, held_in_year: list) -> list[dict]:
    """Each partnership with a held interaction in the year, with the stage and date of its
    earliest held interaction ever: one statement, each partnership's first interaction found
    along its (partnership, date) index."""
    partnership = aliased(Partnership)  # aliases: the conditions name the plain tables
    first = aliased(Interaction)
    of_year = select(Interaction.partnership_id).where(
        *held_in_year, Interaction.partnership_id.is_not(None))
    earliest = (
        select(Interaction.id)
        .where(Interaction.partnership_id == partnership.id, *_held(conditions))
        .order_by(Interaction.occurred_on, Interaction.id)
        .limit(1)
        .correlate(partnership)
        .scalar_subquery()
    )
    rows = db.session.execute(
        select(partnership.id, partnership.title, first.lifecycle_stage, first.occurred_on)
        .join(first, first.id == earliest)
        .where(partnership.id.in_(of_year))
        .order_by(partnership.title, partnership.id)
    ).all()
    return [{"id": f"first-engagement-partnership-{row.id}",
             "partnership": {"id": f"partnership-{row.id}", "title": row.title},
             "stage": row.lifecycle_stage, "first_held_on": row.occurred_on.isoformat()}
            for row in rows]


def _you_said_we_did(counts: dict[str | None, dict[str, int]], held: list,
                     latest: int | None) -> dict:
    recorded = _summed(counts, "outcomes")
    shared = _summed(counts, "outcomes_shared")
    partnership = aliased(Partnership)  # an alias: the conditions name the plain table
    query = (
        select(Interaction.id, Interaction.title, Interaction.occurred_on,
               Interaction.outcome_changes, Interaction.outcomes_shared_on,
               partnership.title.label("partnership_title"))
        .outerjoin(partnership, partnership.id == Interaction.partnership_id)
        .where(*held, _outcome_recorded())
    )
    if latest is None:
        query = query.order_by(Interaction.occurred_on, Interaction.id)
    else:
        query = query.order_by(Interaction.occurred_on.desc(), Interaction.id.desc()).limit(latest)
    lines = [{"id": f"outcome-change-{row.id}", "interaction": f"interaction-{row.id}",
              "title": row.title, "partnership": row.partnership_title,
              "occurred_on": row.occurred_on.isoformat(),
              "what_changed": row.outcome_changes.strip(),
              "shared_back_on": row.outcomes_shared_on.isoformat()
              if row.outcomes_shared_on else None}
             for row in db.session.execute(query)] if recorded else []
    return {"recorded": recorded, "shared_back": shared, "not_shared_back": recorded - shared,
            "lines": lines, "lines_not_listed": recorded - len(lines)}
