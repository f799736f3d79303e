"""Activities, prioritisation exercises, their comparison and how interactions cover them."""

from dataclasses import dataclass, field
from datetime import date

from marshmallow import fields
from sqlalchemy import func, select

from .. import audit
from ..database import utcnow
from ..errors import Conflict, NotAllowed, ValidationFailed
from ..extensions import db
from ..organisations.models import Organisation
from ..partnerships.models import Partnership
from ..permissions import (
    acting_organisation_ids,
    can_add_activities,
    can_rate_activities,
    can_read_draft_exercises,
    can_read_own_exercises,
    can_retire_activities,
    can_run_own_exercises,
    partnership_scope,
    require,
    visible_partnership_ids,
    visible_record,
)
from ..validation import Input, load, required, required_text, subset, text, texts
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


def can_edit_exercise(user, exercise: PrioritisationExercise) -> bool:
    """A partnership's exercise: its side's people; an own one: its organisation's
    advocates and compliance officers."""
    if exercise.is_own:
        return can_run_own_exercises(user, exercise.organisation_id)
    return can_edit_side(user, exercise.partnership, exercise.side)


def require_exercise_editor(user, exercise: PrioritisationExercise) -> None:
    if exercise.is_own:
        require(can_run_own_exercises, user, exercise.organisation_id)
    else:
        require_side_editor(user, exercise.partnership, exercise.side)


def is_exercise_visible(user, exercise: PrioritisationExercise) -> bool:
    """Whether the exercise exists for the user at all (else it answers 404): a partnership's
    to those who see the partnership; an own one to its organisation's advocates, compliance
    officers and auditors only, never to another organisation."""
    if exercise.is_void:
        return False
    if exercise.is_own:
        return can_read_own_exercises(user, exercise.organisation_id)
    return visible_record(Partnership, exercise.partnership_id, partnership_scope,
                          user) is not None


def can_view_exercise(user, exercise: PrioritisationExercise) -> bool:
    """Each side works on its own: a draft is open to its editors, compliance and auditors."""
    if exercise.is_own:
        return can_read_own_exercises(user, exercise.organisation_id)
    return exercise.is_completed or can_read_draft_exercises(user) \
        or can_edit_side(user, exercise.partnership, exercise.side)


# --- the exercises: named, several per side, or an organisation's own -------------------------

SIDE_OF_KIND = {"sponsor": "sponsor", "patient_group": "patient_group"}


def _live_exercises():
    return select(PrioritisationExercise).where(PrioritisationExercise.voided_at.is_(None))


def exercises_of(partnership: Partnership, side: str | None = None
                 ) -> list[PrioritisationExercise]:
    """The partnership's live exercises (of one side), oldest first."""
    query = _live_exercises().where(PrioritisationExercise.partnership_id == partnership.id)
    if side is not None:
        side_organisation_id(partnership, side)
        query = query.where(PrioritisationExercise.side == side)
    return list(db.session.scalars(query.order_by(PrioritisationExercise.id)))


def exercise_for(partnership: Partnership, side: str) -> PrioritisationExercise | None:
    """The side's first live exercise: the one a URL of the time when a side held a single
    exercise names."""
    found = exercises_of(partnership, side)
    return found[0] if found else None


def own_exercises(organisation_ids) -> list[PrioritisationExercise]:
    """The own exercises (no partnership yet) of these organisations (None: of every one)."""
    query = _live_exercises().where(PrioritisationExercise.partnership_id.is_(None))
    if organisation_ids is not None:
        query = query.where(PrioritisationExercise.organisation_id.in_(list(organisation_ids)))
    return list(db.session.scalars(query.order_by(PrioritisationExercise.organisation_id,
                                                  PrioritisationExercise.id)))


def exercises_by_partnership(partnership_ids) -> dict[int, list[PrioritisationExercise]]:
    """The live exercises of these partnerships, oldest first, by partnership (one query)."""
    found: dict[int, list[PrioritisationExercise]] = {}
    if not partnership_ids:
        return found
    for exercise in db.session.scalars(_live_exercises().where(
            PrioritisationExercise.partnership_id.in_(list(partnership_ids)))
            .order_by(PrioritisationExercise.id)):
        found.setdefault(exercise.partnership_id, []).append(exercise)
    return found


def suggested_name(partnership: Partnership | None, side: str,
                   organisation_id: int | None = None) -> str:
    """A name to start from: the partnership's title (an own exercise: "Engagement priorities
    <year>"), unless one of the side's exercises has it already (then none)."""
    if partnership is not None:
        base, organisation_id = partnership.title[:200], side_organisation_id(partnership, side)
    else:
        base = f"Engagement priorities {utcnow().year}"
    taken = _name_taken(base, organisation_id, partnership.id if partnership else None, side)
    return "" if taken else base


class ExerciseNameInput(Input):
    name = required_text(200)


def _exercise_name(name) -> str:
    return load(ExerciseNameInput(), {"name": name})["name"].strip()


def _name_taken(name: str, organisation_id: int, partnership_id: int | None, side: str,
                except_id: int | None = None) -> bool:
    query = select(PrioritisationExercise.id).where(
        func.lower(PrioritisationExercise.name) == name.lower(),
        PrioritisationExercise.voided_at.is_(None))
    if partnership_id is None:
        query = query.where(PrioritisationExercise.partnership_id.is_(None),
                            PrioritisationExercise.organisation_id == organisation_id)
    else:
        query = query.where(PrioritisationExercise.partnership_id == partnership_id,
                            PrioritisationExercise.side == side)
    if except_id is not None:
        query = query.where(PrioritisationExercise.id != except_id)
    return db.session.scalar(query.limit(1)) is not None


def _refuse_taken_name(name: str, organisation_id: int, partnership_id: int | None, side: str,
                       except_id: int | None = None) -> None:
    if not _name_taken(name, organisation_id, partnership_id, side, except_id):
        return
    where = (f"this partnership's {PRIORITISATION_SIDES[side].lower()} side" if partnership_id
             else "this organisation's own exercises")
    raise ValidationFailed({"name": [
        f"An exercise named “{name}” already exists among {where}; give this one another "
        "name (for example the study or programme it is for)."]})


def start_exercise(partnership: Partnership, side: str, name, actor) -> PrioritisationExercise:
    """Start a named draft exercise for one side of a partnership (a side may hold several)."""
    require_side_editor(actor, partnership, side)
    if partnership.is_void:
        raise Conflict("This partnership has been voided.")
    clean = _exercise_name(name)
    organisation_id = side_organisation_id(partnership, side)
    _refuse_taken_name(clean, organisation_id, partnership.id, side)
    exercise = PrioritisationExercise(
        partnership=partnership, side=side, name=clean, organisation_id=organisation_id,
        created_by_id=actor.id,
    )
    db.session.add(exercise)
    db.session.flush()
    return exercise


def side_of_organisation(organisation: Organisation) -> str:
    """The side an organisation's own exercise takes: a sponsor's or a patient group's."""
    side = SIDE_OF_KIND.get(organisation.kind)
    if side is None:
        raise Conflict(f"{organisation.name} is recorded as neither a sponsor nor a patient "
                       "group, so it has no side to prioritise for; nothing was changed.")
    return side


def start_own_exercise(organisation_id: int | None, name, actor) -> PrioritisationExercise:
    """Start an organisation's own draft exercise, before (or outside) any partnership."""
    if organisation_id is None:
        raise NotAllowed("Your account belongs to no organisation, so it cannot run an "
                         "exercise of its own; nothing was changed.")
    require(can_run_own_exercises, actor, organisation_id)
    organisation = db.session.get(Organisation, organisation_id)
    if organisation is None or organisation.is_void:
        raise NotAllowed("This organisation is not open to you; nothing was changed.")
    side = side_of_organisation(organisation)
    clean = _exercise_name(name)
    _refuse_taken_name(clean, organisation_id, None, side)
    exercise = PrioritisationExercise(side=side, name=clean, organisation_id=organisation_id,
                                      created_by_id=actor.id)
    db.session.add(exercise)
    db.session.flush()
    return exercise


def rename_exercise(exercise: PrioritisationExercise, name, actor) -> PrioritisationExercise:
    """Give the exercise another name (unique where it belongs)."""
    require_exercise_editor(actor, exercise)
    clean = _exercise_name(name)
    if clean != exercise.name:
        _refuse_taken_name(clean, exercise.organisation_id, exercise.partnership_id,
                           exercise.side, except_id=exercise.id)
        exercise.name = clean
        db.session.flush()
    return exercise


def attachable_partnerships(exercise: PrioritisationExercise, user) -> list[Partnership]:
    """The live partnerships the user sees where the exercise's organisation is its side."""
    side_column = Partnership.sponsor_id if exercise.side == "sponsor" \
        else Partnership.patient_group_id
    return list(db.session.scalars(
        select(Partnership).where(partnership_scope(user), Partnership.voided_at.is_(None),
                                  side_column == exercise.organisation_id)
        .order_by(Partnership.title, Partnership.id)))


class AttachInput(Input):
    partnership_id = required(fields.Integer)


def attach_exercise(exercise: PrioritisationExercise, partnership_id, actor
                    ) -> PrioritisationExercise:
    """Make an organisation's own exercise one of a partnership it is a party to, on its
    side; the partner then sees it once it is completed, as any of the partnership's."""
    require(can_run_own_exercises, actor, exercise.organisation_id)
    if not exercise.is_own:
        raise Conflict("This exercise is already part of a partnership; nothing was changed.")
    wanted = load(AttachInput(), {"partnership_id": partnership_id})["partnership_id"]
    partnership = next((p for p in attachable_partnerships(exercise, actor) if p.id == wanted),
                       None)
    if partnership is None:
        label = PRIORITISATION_SIDES[exercise.side].lower()
        raise ValidationFailed({"partnership_id": [
            f"Choose a partnership {exercise.organisation.name} is the {label} of; this "
            "exercise can join only such a partnership."]})
    _refuse_taken_name(exercise.name, exercise.organisation_id, partnership.id, exercise.side)
    audit.set_reason(f"Attached to the partnership “{partnership.title}”.")
    # The column itself, so the audit trail records the change of partnership_id.
    exercise.partnership_id = partnership.id
    db.session.flush()
    return exercise


def _require_open(exercise: PrioritisationExercise, actor) -> None:
    require_exercise_editor(actor, exercise)
    if exercise.is_completed:
        raise Conflict("This exercise is marked completed. Reopen it to change it; "
                       "nothing was changed.")


def selectable_activities(exercise: PrioritisationExercise) -> list[Activity]:
    """Catalogue activities and the partner organisations' own activities (an own exercise:
    its organisation's)."""
    if exercise.is_own:
        return all_activities({exercise.organisation_id})
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
    require_exercise_editor(actor, exercise)
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

    def _both_rate(self, benefit: str, investment: str) -> bool:
        return self.both_rated and all(
            (rating.benefit, rating.investment) == (benefit, investment)
            for rating in (self.sponsor, self.patient_group))

    @property
    def is_pursue(self) -> bool:
        """Both rate it high benefit for a low investment: a priority to pursue."""
        return self._both_rate("high", "low")

    @property
    def is_worth_if_resourced(self) -> bool:
        """Both rate it high benefit for a high investment: worth it if resourced."""
        return self._both_rate("high", "high")

    @property
    def offered_by(self) -> str | None:
        """The side that rates it of low value to itself while the other rates it of high
        value: what the first can offer the other."""
        if not self.both_rated:
            return None
        if (self.sponsor.benefit, self.patient_group.benefit) == ("low", "high"):
            return "sponsor"
        if (self.sponsor.benefit, self.patient_group.benefit) == ("high", "low"):
            return "patient_group"
        return None

    @property
    def offered_to(self) -> str | None:
        by = self.offered_by
        return None if by is None else ("patient_group" if by == "sponsor" else "sponsor")

    @property
    def is_to_discuss(self) -> bool:
        """Both rate it high benefit but see the investment otherwise than both low or both
        high: agree who carries what."""
        return self.both_rated and self.sponsor.benefit == self.patient_group.benefit == "high" \
            and not self.is_pursue and not self.is_worth_if_resourced

    @property
    def outcome(self) -> str | None:
        """What the comparison finds for it (a COMPARISON_OUTCOMES name), or None."""
        if self.is_pursue:
            return "pursue"
        if self.is_worth_if_resourced:
            return "worth_if_resourced"
        if self.offered_by is not None:
            return f"{self.offered_by}_can_offer"
        return "to_discuss" if self.is_to_discuss else None

    # The partnership's priorities are the ones to pursue (reports and coverage read them).
    is_mutual_priority = is_pursue

    @property
    def combined_investment(self) -> int | None:
        if not self.both_rated:
            return None
        return LEVEL_RANK[self.sponsor.investment] + LEVEL_RANK[self.patient_group.investment]


@dataclass
class Comparison:
    """A sponsor exercise and a patient-group exercise of one partnership, side by side."""

    partnership: Partnership
    exercises: dict[str, PrioritisationExercise | None]  # the pair, or a side's draft
    rows: list[ComparisonRow]
    choices: dict[str, list[PrioritisationExercise]] = field(default_factory=dict)

    @property
    def ready(self) -> bool:
        """Both exercises of the pair are completed."""
        return all(ex is not None and ex.is_completed for ex in self.exercises.values())

    @property
    def pursue(self) -> list[ComparisonRow]:
        """Both rate high benefit and low investment: the priorities to pursue."""
        return [row for row in self.rows if row.is_pursue]

    mutual_priorities = pursue

    @property
    def worth_if_resourced(self) -> list[ComparisonRow]:
        return [row for row in self.rows if row.is_worth_if_resourced]

    def offered_by(self, side: str) -> list[ComparisonRow]:
        """What this side can offer the other (low value to itself, high to the other)."""
        return [row for row in self.rows if row.offered_by == side]

    @property
    def can_offer(self) -> list[ComparisonRow]:
        return [row for row in self.rows if row.offered_by is not None]

    @property
    def to_discuss(self) -> list[ComparisonRow]:
        return [row for row in self.rows if row.is_to_discuss]


def _newest_completed_first(exercises) -> list[PrioritisationExercise]:
    return sorted(exercises, key=lambda ex: (ex.completed_at, ex.id), reverse=True)


def default_pair(completed: dict[str, list[PrioritisationExercise]]
                 ) -> dict[str, PrioritisationExercise | None]:
    """The pair compared unless the user chooses: a sponsor and a patient-group exercise of
    the same name (the most recently completed such pair), else the latest completed of each
    side. `completed`: each side's completed exercises, newest first."""
    sponsor, group = completed.get("sponsor", []), completed.get("patient_group", [])
    group_by_name: dict[str, PrioritisationExercise] = {}
    for exercise in group:
        group_by_name.setdefault(exercise.name.casefold(), exercise)
    same_name = [(ex, group_by_name[ex.name.casefold()]) for ex in sponsor
                 if ex.name.casefold() in group_by_name]
    if same_name:
        pair = max(same_name, key=lambda p: (max(p[0].completed_at, p[1].completed_at),
                                             max(p[0].id, p[1].id)))
        return {"sponsor": pair[0], "patient_group": pair[1]}
    return {"sponsor": sponsor[0] if sponsor else None,
            "patient_group": group[0] if group else None}


def _comparison_rows(sponsor: dict[str, ActivityRating], group: dict[str, ActivityRating],
                     known: dict[str, Activity]) -> list[ComparisonRow]:
    order = {code: index for index, code in enumerate(known)}
    codes = sorted(set(sponsor) | set(group), key=lambda code: (order.get(code, len(order)),
                                                                  code))
    return [ComparisonRow(code, known.get(code), sponsor.get(code), group.get(code))
            for code in codes]


def compare_exercises(partnership: Partnership, chosen: dict[str, int | None] | None = None
                      ) -> Comparison:
    """Set a sponsor exercise and a patient-group exercise side by side: the pair chosen (by
    id, each side's) or the default pair. Only completed exercises count (drafts stay private
    to their side); a side without one shows its latest draft, to say it is still drafting."""
    live = exercises_of(partnership)
    completed = {side: _newest_completed_first(
        ex for ex in live if ex.side == side and ex.is_completed) for side in PRIORITISATION_SIDES}
    pair = default_pair(completed)
    errors = {}
    for side, exercise_id in (chosen or {}).items():
        if exercise_id is None:
            continue
        match = next((ex for ex in completed[side] if ex.id == exercise_id), None)
        if match is None:
            errors[side] = [f"Choose one of this partnership's completed "
                            f"{PRIORITISATION_SIDES[side].lower()} exercises."]
        else:
            pair[side] = match
    if errors:
        raise ValidationFailed(errors, "That pair cannot be compared; the default pair is shown.")
    exercises = {}
    for side in PRIORITISATION_SIDES:
        drafts = [ex for ex in live if ex.side == side]
        exercises[side] = pair[side] or (drafts[-1] if drafts else None)
    ratings = {side: {r.activity_code: r for r in pair[side].selected} if pair[side] else {}
               for side in PRIORITISATION_SIDES}
    rows = _comparison_rows(ratings["sponsor"], ratings["patient_group"], activities_by_code())
    return Comparison(partnership, exercises, rows, completed)


def pursue_priorities_of(partnership_ids) -> dict[int, list[ComparisonRow]]:
    """Each partnership's priorities to pursue, by its default pair (two queries for all)."""
    ids = list(partnership_ids)
    if not ids:
        return {}
    exercises = db.session.scalars(_live_exercises().where(
        PrioritisationExercise.partnership_id.in_(ids),
        PrioritisationExercise.status == "completed")).all()
    by_partnership: dict[int, dict[str, list]] = {}
    for exercise in exercises:
        by_partnership.setdefault(exercise.partnership_id, {}).setdefault(
            exercise.side, []).append(exercise)
    pairs = {}
    for partnership_id, sides in by_partnership.items():
        pair = default_pair({side: _newest_completed_first(found)
                             for side, found in sides.items()})
        if pair["sponsor"] is not None and pair["patient_group"] is not None:
            pairs[partnership_id] = pair
    if not pairs:
        return {}
    exercise_ids = [ex.id for pair in pairs.values() for ex in pair.values()]
    ratings: dict[int, dict[str, ActivityRating]] = {}
    for rating in db.session.scalars(select(ActivityRating).where(
            ActivityRating.exercise_id.in_(exercise_ids), ActivityRating.voided_at.is_(None))):
        ratings.setdefault(rating.exercise_id, {})[rating.activity_code] = rating
    known = activities_by_code()
    return {
        partnership_id: [row for row in _comparison_rows(
            ratings.get(pair["sponsor"].id, {}), ratings.get(pair["patient_group"].id, {}),
            known) if row.is_pursue]
        for partnership_id, pair in pairs.items()
    }


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
    priorities: list[PriorityCoverage]  # the priorities to pursue
    resourced: list[PriorityCoverage]  # worth it if resourced
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


def coverage_for(partnership: Partnership, today: date | None = None,
                 comparison: Comparison | None = None) -> Coverage:
    """For each priority to pursue (and, apart, each worth it if resourced), the interactions
    that served it; and the interactions that serve neither."""
    from ..interactions.models import Interaction

    today = today or utcnow().date()
    since = months_before(today, COVERAGE_WINDOW_MONTHS)
    comparison = comparison or compare_exercises(partnership)
    priorities = [PriorityCoverage(row) for row in comparison.pursue]
    resourced = [PriorityCoverage(row) for row in comparison.worth_if_resourced]
    by_code = {item.row.code: item for item in priorities + resourced}
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
    return Coverage(partnership, comparison, since, priorities, resourced, unlinked)


# --- demo data ------------------------------------------------------------------------------

DEMO_EXERCISE_NAME = "Phase 2 protocol – {title}"
DEMO_RATINGS = {
    # code: (sponsor benefit, sponsor investment, patient group benefit, patient group investment)
    "RP-01": ("high", "low", "high", "low"),  # pursue
    "TD-01": ("high", "low", "high", "low"),  # pursue
    "TD-04": ("high", "low", "high", "low"),  # pursue
    "RP-03": ("high", "high", "high", "high"),  # worth it if resourced
    "TC-01": ("high", "moderate", "low", "high"),  # the patient group can offer it
    "DP-02": ("low", "low", "high", "low"),  # the sponsor can offer it
    "TD-03": ("high", "moderate", "high", "low"),  # high for both: agree the investment
    "RR-02": ("moderate", "moderate", "high", "high"),
}
DEMO_OWN_RATINGS = {  # the sponsor's own portfolio exercise, before any partnership
    "RP-02": ("high", "low"), "RP-05": ("high", "high"), "DP-01": ("low", "low"),
    "TC-03": ("low", "high"),
}
DEMO_FACTORS = {
    "high": (["reach", "development_necessity"], ["staff_time"]),
    "moderate": (["patient_group_necessity"], ["money", "staff_time"]),
    "low": (["short_term_ease"], ["money", "organisational_commitment", "patient_burden"]),
}


def _demo_entries(ratings: dict[str, tuple[str, str]], side_label: str) -> list[dict]:
    return [{
        "activity_code": code,
        "benefit": benefit,
        "investment": investment,
        "benefit_factors": DEMO_FACTORS[benefit][0],
        "investment_factors": DEMO_FACTORS[investment][1],
        "rationale": f"{side_label} view: {benefit} benefit for a {investment} investment, "
                     "given these plans.",
        "implementation_notes": "Agree owners and timing at the next joint planning meeting.",
    } for code, (benefit, investment) in ratings.items()]


def _complete_demo(exercise: PrioritisationExercise, ratings: dict[str, tuple[str, str]],
                   user) -> PrioritisationExercise:
    select_activities(exercise, list(ratings), user)
    rate_activities(exercise, _demo_entries(ratings, PRIORITISATION_SIDES[exercise.side]), user)
    advance_to_matrix(exercise, user)
    return complete_exercise(exercise, user)


def seed_demo_exercises(partnership: Partnership, sponsor_user, patient_group_user
                        ) -> dict[str, PrioritisationExercise]:
    """Create a completed exercise of the same name per side, whose comparison holds
    priorities to pursue, one worth it if resourced and what each side can offer."""
    made = {}
    name = DEMO_EXERCISE_NAME.format(title=partnership.title)[:200]
    for index, (side, user) in enumerate(
        (("sponsor", sponsor_user), ("patient_group", patient_group_user))
    ):
        ratings = {code: levels[2 * index:2 * index + 2] for code, levels in DEMO_RATINGS.items()}
        with audit.acting_as(audit.Actor(user.id, user.email)):
            made[side] = _complete_demo(start_exercise(partnership, side, name, user), ratings,
                                        user)
    with audit.acting_as(audit.Actor(sponsor_user.id, sponsor_user.email),
                         reason="Demo: linked to the engagement activities it served."):
        link_demo_interactions(partnership)
    return made


def seed_demo_own_exercise(organisation_id: int, user) -> PrioritisationExercise:
    """Create an organisation's own completed exercise, not yet part of any partnership."""
    with audit.acting_as(audit.Actor(user.id, user.email)):
        exercise = start_own_exercise(organisation_id, "Engagement portfolio review", user)
        return _complete_demo(exercise, DEMO_OWN_RATINGS, user)


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
