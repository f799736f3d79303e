"""Activities, prioritisation exercises, their comparison and how interactions cover them."""

from dataclasses import dataclass, field
from datetime import date

from marshmallow import fields
from sqlalchemy import func, select

from .. import audit
from ..database import utcnow
from ..errors import Conflict, NotAllowed, ValidationFailed
from ..extensions import db
from ..partnerships.models import Partnership
from ..permissions import (
    acting_organisation_ids,
    can_add_activities,
    can_rate_activities,
    can_read_draft_exercises,
    can_retire_activities,
    require,
    visible_partnership_ids,
)
from ..validation import Input, load, required_text, subset, text, texts
from ..vocabulary import (
    BENEFIT_FACTORS,
    INVESTMENT_FACTORS,
    PRIORITISATION_SIDES,
    RATING_LEVELS,
)
from .catalogue import Activity, current_catalogue
from .models import ActivityRating, CustomActivity, PrioritisationExercise

LEVEL_RANK = {"low": 1, "moderate": 2, "high": 3}
LEVELS_HIGH_FIRST = ("high", "moderate", "low")
LEVELS_LOW_FIRST = ("low", "moderate", "high")

# The four quadrant meanings of the CTTI matrix; the cells between them are for discussion.
QUADRANTS = {
    ("high", "low"): ("pursue", "Pursue: high benefit for a low investment"),
    ("high", "high"): ("worth_if_resourced", "Worth it if it can be resourced"),
    ("low", "low"): ("valuable_to_partner", "Little benefit to us, may be valuable to a partner"),
    ("low", "high"): ("unlikely_worth", "Unlikely to be worth the investment"),
}
STEPS = {1: "Identify activities", 2: "Rate benefit and investment", 3: "Priority matrix"}
COVERAGE_WINDOW_MONTHS = 12


def quadrant(benefit: str | None, investment: str | None) -> tuple[str, str] | None:
    """Return the (name, meaning) of the quadrant a rating falls in, or None between them."""
    return QUADRANTS.get((benefit, investment))


# --- the activities -----------------------------------------------------------------------------


def stages() -> dict[str, str]:
    """Return the lifecycle stages activities are grouped by, code -> label, in order."""
    return current_catalogue().stages


def _custom_activity(row: CustomActivity) -> Activity:
    return Activity(code=row.code, stage=row.stage, name=row.name, description=row.description,
                    example=row.example, retired=row.is_void,
                    organisation_id=row.organisation_id, record_id=row.id)


def all_activities(organisation_ids=None, include_retired: bool = False) -> list[Activity]:
    """Return the catalogue then organisations' own activities (all, or those of the given ids)."""
    activities = [a for a in current_catalogue().activities if include_retired or not a.retired]
    query = select(CustomActivity).order_by(CustomActivity.organisation_id, CustomActivity.id)
    if organisation_ids is not None:
        query = query.where(CustomActivity.organisation_id.in_(list(organisation_ids)))
    if not include_retired:
        query = query.where(CustomActivity.voided_at.is_(None))
    activities.extend(_custom_activity(row) for row in db.session.scalars(query))
    return activities


def activities_open_to(user) -> list[Activity]:
    """The catalogue, then the organisations' own activities this user may see: those of the
    organisations the user acts for and of the parties of the partnerships open to the user
    (the activities its interactions can serve)."""
    from ..partnerships.models import partnership_members

    organisations = acting_organisation_ids(user)
    if organisations is None:
        return all_activities()
    visible = visible_partnership_ids(user)
    parties = set(db.session.scalars(select(Partnership.sponsor_id).where(
        Partnership.id.in_(visible))))
    parties.update(db.session.scalars(select(Partnership.patient_group_id).where(
        Partnership.id.in_(visible))))
    parties.update(db.session.scalars(select(partnership_members.c.organisation_id).where(
        partnership_members.c.partnership_id.in_(visible))))
    parties.update(organisations)
    return all_activities(parties)


def activities_by_code() -> dict[str, Activity]:
    """Every activity that ever existed (retired and withdrawn included), by code."""
    return {activity.code: activity for activity in all_activities(include_retired=True)}


def unknown_activity_codes(codes: list[str]) -> list[str]:
    """Return the codes (in the order given, once each) that name no activity."""
    known = {activity.code for activity in current_catalogue().activities}
    wanted = [code for code in dict.fromkeys(codes) if code not in known]
    if not wanted:
        return []
    custom = set(db.session.scalars(
        select(CustomActivity.code).where(CustomActivity.code.in_(wanted))
    ))
    return [code for code in wanted if code not in custom]


def activities_by_stage(activities: list[Activity]) -> list[tuple[str, str, list[Activity]]]:
    """Group activities as (stage code, stage label, activities) in catalogue order."""
    labels = stages()
    grouped: dict[str, list[Activity]] = {code: [] for code in labels}
    for activity in activities:
        grouped.setdefault(activity.stage, []).append(activity)
    return [(code, labels.get(code, code), items) for code, items in grouped.items() if items]


class CustomActivityInput(Input):
    stage = required_text(40)
    name = required_text(200)
    description = required_text(4000)
    example = text(2000, allow_none=True, load_default=None)


def add_custom_activity(organisation_id: int | None, values: dict, actor) -> CustomActivity:
    """Add an organisation's own activity under a code of its namespace (ORG<id>-NN)."""
    require(can_add_activities, actor)
    if organisation_id is None:
        raise NotAllowed("Your account belongs to no organisation, so it cannot add activities.")
    if actor.organisation_id != organisation_id:
        raise NotAllowed("You can add activities only for your own organisation.")
    clean = load(CustomActivityInput(), values)
    errors = {}
    if clean["stage"] not in stages():
        errors["stage"] = [f"Must be one of: {', '.join(stages())}."]
    name_taken = db.session.scalar(
        select(CustomActivity.id).where(
            CustomActivity.organisation_id == organisation_id,
            func.lower(CustomActivity.name) == clean["name"].strip().lower(),
            CustomActivity.voided_at.is_(None),
        )
    )
    if name_taken or clean["name"].strip().lower() in {
        a.name.lower() for a in current_catalogue().activities
    }:
        errors["name"] = ["An activity with this name already exists; select that one instead."]
    if errors:
        raise ValidationFailed(errors)
    existing = db.session.scalar(
        select(func.count()).select_from(CustomActivity)
        .where(CustomActivity.organisation_id == organisation_id)
    )
    row = CustomActivity(
        organisation_id=organisation_id,
        code=f"ORG{organisation_id}-{existing + 1:02d}",
        stage=clean["stage"],
        name=clean["name"].strip(),
        description=clean["description"].strip(),
        example=(clean["example"] or "").strip() or None,
        created_by_id=actor.id,
    )
    db.session.add(row)
    db.session.flush()
    return row


def withdraw_custom_activity(row: CustomActivity, actor, reason: str) -> CustomActivity:
    """Withdraw an organisation's own activity from the choices; its code stays readable."""
    require(can_retire_activities, actor, row)
    if not (reason or "").strip():
        raise ValidationFailed({"reason": ["Say why this activity is being withdrawn."]})
    if row.is_void:
        raise Conflict("This activity is already withdrawn.")
    audit.set_reason(reason.strip())
    row.voided_at = utcnow()
    row.void_reason = reason.strip()
    db.session.flush()
    return row


# --- who may do what ----------------------------------------------------------------------------


def side_organisation_id(partnership: Partnership, side: str) -> int:
    if side not in PRIORITISATION_SIDES:
        raise ValidationFailed({"side": [f"Must be one of: {', '.join(PRIORITISATION_SIDES)}."]})
    return partnership.sponsor_id if side == "sponsor" else partnership.patient_group_id


def can_edit_side(user, partnership: Partnership, side: str) -> bool:
    """Compliance may edit either side; advocates and partners only their organisation's."""
    return can_rate_activities(user, side_organisation_id(partnership, side))


def require_side_editor(user, partnership: Partnership, side: str) -> None:
    if can_edit_side(user, partnership, side):
        return
    label = PRIORITISATION_SIDES[side].lower()
    if can_rate_activities(user):
        raise NotAllowed(
            f"Only the {label}'s people can change the {label} side's ratings. You can edit "
            "your own organisation's side; nothing was changed."
        )
    raise NotAllowed("Your role can read prioritisation exercises but not change them; "
                     "nothing was changed.")


def can_view_exercise(user, exercise: PrioritisationExercise) -> bool:
    """Each side works on its own: a draft is open to its editors, compliance and auditors."""
    return exercise.is_completed or can_read_draft_exercises(user) \
        or can_edit_side(user, exercise.partnership, exercise.side)


# --- the exercise, step by step ----------------------------------------------------------------


def exercise_for(partnership: Partnership, side: str) -> PrioritisationExercise | None:
    side_organisation_id(partnership, side)
    return db.session.scalar(
        select(PrioritisationExercise).where(
            PrioritisationExercise.partnership_id == partnership.id,
            PrioritisationExercise.side == side,
            PrioritisationExercise.voided_at.is_(None),
        )
    )


def start_exercise(partnership: Partnership, side: str, actor) -> PrioritisationExercise:
    """Return the side's exercise, starting a draft if there is none yet."""
    require_side_editor(actor, partnership, side)
    if partnership.is_void:
        raise Conflict("This partnership has been voided.")
    exercise = exercise_for(partnership, side)
    if exercise is None:
        exercise = PrioritisationExercise(
            partnership=partnership, side=side,
            organisation_id=side_organisation_id(partnership, side), created_by_id=actor.id,
        )
        db.session.add(exercise)
        db.session.flush()
    return exercise


def _require_open(exercise: PrioritisationExercise, actor) -> None:
    require_side_editor(actor, exercise.partnership, exercise.side)
    if exercise.is_completed:
        raise Conflict("This side's exercise is marked completed. Reopen it to change it; "
                       "nothing was changed.")


def selectable_activities(exercise: PrioritisationExercise) -> list[Activity]:
    """Catalogue activities and both partner organisations' own activities."""
    partnership = exercise.partnership
    return all_activities({partnership.sponsor_id, partnership.patient_group_id})


class SelectionInput(Input):
    activity_codes = texts(24, 200)


def select_activities(exercise: PrioritisationExercise, codes: list[str], actor
                      ) -> PrioritisationExercise:
    """Step 1: keep exactly these activities; ratings of dropped ones are voided, not lost."""
    _require_open(exercise, actor)
    wanted = list(dict.fromkeys(load(SelectionInput(), {"activity_codes": codes})
                                ["activity_codes"]))
    offered = {activity.code for activity in selectable_activities(exercise)}
    current = {rating.activity_code: rating for rating in exercise.ratings}
    unknown = unknown_activity_codes(wanted)
    errors = [f"Unknown activity code: {code}." for code in unknown]
    errors += [
        f"{code} cannot be chosen here: it is retired, withdrawn, or another organisation's "
        "own activity." for code in wanted
        if code not in unknown and code not in offered and code not in current
    ]
    if errors:
        raise ValidationFailed({"activity_codes": errors})
    if not wanted:
        raise ValidationFailed({"activity_codes": ["Choose at least one activity."]})
    now = utcnow()
    for code, rating in current.items():
        if code not in wanted and not rating.is_void:
            rating.voided_at, rating.void_reason = now, "Removed from the selection in step 1."
        elif code in wanted and rating.is_void:
            rating.voided_at, rating.void_reason = None, None
    for code in wanted:
        if code not in current:
            exercise.ratings.append(ActivityRating(activity_code=code))
    exercise.step = max(exercise.step, 2)
    db.session.flush()
    return exercise


class RatingInput(Input):
    activity_code = required_text(24)
    benefit = fields.String(allow_none=True, load_default=None)
    investment = fields.String(allow_none=True, load_default=None)
    benefit_factors = subset(BENEFIT_FACTORS)
    investment_factors = subset(INVESTMENT_FACTORS)
    rationale = text(4000, allow_none=True, load_default=None)
    implementation_notes = text(4000, allow_none=True, load_default=None)


def rate_activities(exercise: PrioritisationExercise, entries: list[dict], actor
                    ) -> PrioritisationExercise:
    """Step 2: save ratings as a draft (some may stay empty).

    Every entry is checked before anything is written, so one bad value changes nothing.
    Errors are keyed "<activity code>.<field>".
    """
    _require_open(exercise, actor)
    by_code = {rating.activity_code: rating for rating in exercise.selected}
    schema = RatingInput()
    errors: dict[str, list[str]] = {}
    cleaned = []
    for entry in entries:
        code = entry.get("activity_code") if isinstance(entry, dict) else None
        try:
            clean = load(schema, entry)
        except ValidationFailed as failure:
            for name, messages in failure.fields.items():
                errors.setdefault(f"{code}.{name}", []).extend(messages)
            continue
        if clean["activity_code"] not in by_code:
            errors.setdefault(f"{code}.activity_code", []).append(
                f"{code} is not among this exercise's chosen activities.")
            continue
        for name in ("benefit", "investment"):
            value = clean[name]
            if value is not None and value not in RATING_LEVELS:
                errors.setdefault(f"{code}.{name}", []).append(
                    f"'{value}' is not on the scale; choose low, moderate or high.")
        cleaned.append(clean)
    if errors:
        raise ValidationFailed(errors, "Some ratings are not valid; nothing was saved.")
    for clean in cleaned:
        rating = by_code[clean.pop("activity_code")]
        for name, value in clean.items():
            if isinstance(value, str):
                value = value.strip() or None
            if getattr(rating, name) != value:
                setattr(rating, name, value)
    db.session.flush()
    return exercise


def unrated_codes(exercise: PrioritisationExercise) -> list[str]:
    return [rating.activity_code for rating in exercise.selected if not rating.is_rated]


def advance_to_matrix(exercise: PrioritisationExercise, actor) -> PrioritisationExercise:
    """Go on to step 3 once every chosen activity has both ratings."""
    _require_open(exercise, actor)
    unrated = unrated_codes(exercise)
    if unrated:
        raise ValidationFailed(
            {f"{code}.benefit": ["Rate both benefit and investment before the matrix."]
             for code in unrated},
            "Rate every activity's benefit and investment to go on to the matrix.",
        )
    exercise.step = 3
    db.session.flush()
    return exercise


def move_in_matrix(exercise: PrioritisationExercise, activity_code: str, benefit: str,
                   investment: str, actor) -> ActivityRating:
    """Step 3: place an activity in another cell, which changes (and audits) its rating."""
    _require_open(exercise, actor)
    errors = {}
    if benefit not in RATING_LEVELS:
        errors["benefit"] = [f"'{benefit}' is not on the scale; choose low, moderate or high."]
    if investment not in RATING_LEVELS:
        errors["investment"] = [
            f"'{investment}' is not on the scale; choose low, moderate or high."]
    rating = next((r for r in exercise.selected if r.activity_code == activity_code), None)
    if rating is None:
        errors["activity_code"] = [f"{activity_code} is not in this exercise's matrix."]
    if errors:
        raise ValidationFailed(errors, "The activity could not be moved; nothing was changed.")
    if (rating.benefit, rating.investment) != (benefit, investment):
        audit.set_reason(
            f"Moved in the matrix from benefit {rating.benefit or 'unrated'} / investment "
            f"{rating.investment or 'unrated'} to benefit {benefit} / investment {investment}."
        )
        rating.benefit, rating.investment = benefit, investment
        db.session.flush()
    return rating


def complete_exercise(exercise: PrioritisationExercise, actor) -> PrioritisationExercise:
    """Mark the side's exercise completed: it then counts in the comparison."""
    _require_open(exercise, actor)
    if not exercise.selected:
        raise ValidationFailed({"activity_codes": ["Choose at least one activity first."]})
    unrated = unrated_codes(exercise)
    if unrated:
        raise ValidationFailed(
            {"ratings": [f"{code} has no benefit or investment rating yet." for code in unrated]},
            "Rate every chosen activity before marking the exercise completed.",
        )
    exercise.status = "completed"
    exercise.step = 3
    exercise.completed_at = utcnow()
    exercise.completed_by_id = actor.id
    db.session.flush()
    return exercise


def reopen_exercise(exercise: PrioritisationExercise, actor, reason: str | None = None
                    ) -> PrioritisationExercise:
    """Put a completed exercise back into draft so its ratings can change."""
    require_side_editor(actor, exercise.partnership, exercise.side)
    if not exercise.is_completed:
        raise Conflict("This exercise is already a draft.")
    audit.set_reason(reason or "Reopened to revise the ratings.")
    exercise.status = "draft"
    exercise.completed_at = None
    exercise.completed_by_id = None
    db.session.flush()
    return exercise


# --- the matrix -----------------------------------------------------------------------------


@dataclass(frozen=True)
class MatrixCell:
    benefit: str
    investment: str
    items: list  # (ActivityRating, Activity | None)

    @property
    def quadrant(self) -> tuple[str, str] | None:
        return quadrant(self.benefit, self.investment)


def matrix_of(exercise: PrioritisationExercise) -> list[list[MatrixCell]]:
    """Return rows high → low benefit, each with cells low → high investment."""
    known = activities_by_code()
    rated = [rating for rating in exercise.selected if rating.is_rated]
    return [
        [
            MatrixCell(benefit, investment, [
                (rating, known.get(rating.activity_code)) for rating in rated
                if rating.benefit == benefit and rating.investment == investment
            ])
            for investment in LEVELS_LOW_FIRST
        ]
        for benefit in LEVELS_HIGH_FIRST
    ]


def activity_name(code: str, known: dict[str, Activity] | None = None) -> str:
    activity = (known if known is not None else activities_by_code()).get(code)
    return activity.name if activity else f"{code} (no longer defined)"


# --- comparing both sides ------------------------------------------------------------------


@dataclass(frozen=True)
class ComparisonRow:
    code: str
    activity: Activity | None
    sponsor: ActivityRating | None
    patient_group: ActivityRating | None

    @property
    def name(self) -> str:
        return self.activity.name if self.activity else f"{self.code} (no longer defined)"

    def rating(self, side: str) -> ActivityRating | None:
        return self.sponsor if side == "sponsor" else self.patient_group

    @property
    def both_rated(self) -> bool:
        return bool(self.sponsor and self.sponsor.is_rated and self.patient_group
                    and self.patient_group.is_rated)

    @property
    def is_mutual_priority(self) -> bool:
        return self.both_rated and self.sponsor.benefit == "high" \
            and self.patient_group.benefit == "high"

    @property
    def is_disagreement(self) -> bool:
        return self.both_rated and {self.sponsor.benefit, self.patient_group.benefit} == {
            "high", "low"}

    @property
    def combined_investment(self) -> int | None:
        if not self.both_rated:
            return None
        return LEVEL_RANK[self.sponsor.investment] + LEVEL_RANK[self.patient_group.investment]


@dataclass
class Comparison:
    partnership: Partnership
    exercises: dict[str, PrioritisationExercise | None]
    rows: list[ComparisonRow]

    @property
    def ready(self) -> bool:
        """Both sides have completed their exercise."""
        return all(ex is not None and ex.is_completed for ex in self.exercises.values())

    @property
    def mutual_priorities(self) -> list[ComparisonRow]:
        """Both sides rate high benefit; lowest combined investment first."""
        rows = [row for row in self.rows if row.is_mutual_priority]
        return sorted(rows, key=lambda row: (row.combined_investment, row.code))

    @property
    def disagreements(self) -> list[ComparisonRow]:
        return [row for row in self.rows if row.is_disagreement]


def compare_exercises(partnership: Partnership) -> Comparison:
    """Set both sides' completed exercises side by side (drafts stay private to their side)."""
    exercises = {side: exercise_for(partnership, side) for side in PRIORITISATION_SIDES}
    ratings: dict[str, dict[str, ActivityRating]] = {}
    for side, exercise in exercises.items():
        usable = exercise is not None and exercise.is_completed
        ratings[side] = {r.activity_code: r for r in exercise.selected} if usable else {}
    known = activities_by_code()
    order = {activity.code: index for index, activity in enumerate(known.values())}
    codes = sorted(set(ratings["sponsor"]) | set(ratings["patient_group"]),
                   key=lambda code: (order.get(code, len(order)), code))
    rows = [ComparisonRow(code, known.get(code), ratings["sponsor"].get(code),
                          ratings["patient_group"].get(code)) for code in codes]
    return Comparison(partnership, exercises, rows)


# --- coverage: do the logged interactions serve the priorities? ----------------------------


@dataclass
class PriorityCoverage:
    row: ComparisonRow
    interactions: list = field(default_factory=list)  # newest first

    @property
    def last_served_on(self) -> date | None:
        return self.interactions[0].occurred_on if self.interactions else None


@dataclass
class Coverage:
    partnership: Partnership
    comparison: Comparison
    since: date
    priorities: list[PriorityCoverage]
    unlinked_interactions: list

    def is_stale(self, item: PriorityCoverage) -> bool:
        return item.last_served_on is None or item.last_served_on < self.since

    @property
    def stale(self) -> list[PriorityCoverage]:
        return [item for item in self.priorities if self.is_stale(item)]


def months_before(day: date, months: int) -> date:
    month_index = day.year * 12 + day.month - 1 - months
    year, month = divmod(month_index, 12)
    month += 1
    for candidate in (day.day, 30, 29, 28):
        try:
            return date(year, month, min(day.day, candidate))
        except ValueError:
            continue
    raise ValueError(day)  # pragma: no cover - every month has a 28th


def coverage_for(partnership: Partnership, today: date | None = None) -> Coverage:
    """For each mutual priority, the interactions that served it; and those that serve none."""
    from ..interactions.models import Interaction

    today = today or utcnow().date()
    since = months_before(today, COVERAGE_WINDOW_MONTHS)
    comparison = compare_exercises(partnership)
    priorities = [PriorityCoverage(row) for row in comparison.mutual_priorities]
    by_code = {item.row.code: item for item in priorities}
    interactions = db.session.scalars(
        select(Interaction)
        .where(Interaction.partnership_id == partnership.id, Interaction.voided_at.is_(None))
        .order_by(Interaction.occurred_on.desc(), Interaction.id.desc())
    ).all()
    unlinked = []
    for interaction in interactions:
        served = [by_code[code] for code in (interaction.activity_codes or []) if code in by_code]
        for item in served:
            item.interactions.append(interaction)
        if not served:
            unlinked.append(interaction)
    return Coverage(partnership, comparison, since, priorities, unlinked)


# --- demo data ------------------------------------------------------------------------------

DEMO_RATINGS = {
    # code: (sponsor benefit, sponsor investment, patient group benefit, patient group investment)
    "RP-01": ("high", "low", "high", "low"),
    "TD-01": ("high", "moderate", "high", "moderate"),
    "TD-04": ("high", "low", "high", "moderate"),
    "TC-01": ("high", "moderate", "low", "high"),
    "RP-03": ("moderate", "high", "high", "high"),
    "DP-02": ("low", "low", "high", "low"),
    "RR-02": ("moderate", "moderate", "high", "high"),
}
DEMO_FACTORS = {
    "high": (["reach", "development_necessity"], ["staff_time"]),
    "moderate": (["patient_group_necessity"], ["money", "staff_time"]),
    "low": (["short_term_ease"], ["money", "organisational_commitment", "patient_burden"]),
}


def seed_demo_exercises(partnership: Partnership, sponsor_user, patient_group_user
                        ) -> dict[str, PrioritisationExercise]:
    """Create one completed exercise per side, with mutual priorities and a disagreement."""
    made = {}
    for index, (side, user) in enumerate(
        (("sponsor", sponsor_user), ("patient_group", patient_group_user))
    ):
        with audit.acting_as(audit.Actor(user.id, user.email)):
            exercise = start_exercise(partnership, side, user)
            select_activities(exercise, list(DEMO_RATINGS), user)
            entries = []
            for code, levels in DEMO_RATINGS.items():
                benefit, investment = levels[2 * index], levels[2 * index + 1]
                entries.append({
                    "activity_code": code,
                    "benefit": benefit,
                    "investment": investment,
                    "benefit_factors": DEMO_FACTORS[benefit][0],
                    "investment_factors": DEMO_FACTORS[investment][1],
                    "rationale": f"{PRIORITISATION_SIDES[side]} view: {benefit} benefit for "
                                 f"a {investment} investment, given this partnership's plans.",
                    "implementation_notes": "Agree owners and timing at the next joint "
                                            "planning meeting.",
                })
            rate_activities(exercise, entries, user)
            advance_to_matrix(exercise, user)
            made[side] = complete_exercise(exercise, user)
    with audit.acting_as(audit.Actor(sponsor_user.id, sponsor_user.email),
                         reason="Demo: linked to the engagement activities it served."):
        link_demo_interactions(partnership)
    return made


# Words of the demo interactions' topics and the activity each one serves.
DEMO_TOPIC_CODES = {
    "visit schedule": "TD-01",
    "outcome measures": "RP-05",
    "eligibility": "TD-03",
    "informed-consent": "TD-04",
    "recruitment": "TC-01",
    "lay summary": "DP-02",
    "registry": "RP-03",
    "retention": "TC-02",
}


def link_demo_interactions(partnership: Partnership) -> int:
    """Link the partnership's unlinked interactions to the activities their topic names."""
    from ..interactions.models import Interaction

    linked = 0
    interactions = db.session.scalars(
        select(Interaction).where(Interaction.partnership_id == partnership.id,
                                  Interaction.voided_at.is_(None))
    ).all()
    for interaction in interactions:
        if interaction.activity_codes:
            continue
        text_seen = f"{interaction.title} {interaction.purpose or ''}".lower()
        codes = [code for words, code in DEMO_TOPIC_CODES.items() if words in text_seen]
        if codes:
            interaction.activity_codes = codes
            linked += 1
    db.session.flush()
    return linked
