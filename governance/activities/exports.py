"""Exports of an exercise and of a comparison: CSV rows (the PDF is governance.pdf's)."""

import csv
import io

from ..spreadsheets import safe_cell
from ..vocabulary import BENEFIT_FACTORS, INVESTMENT_FACTORS, PRIORITISATION_SIDES
from .models import PrioritisationExercise
from .services import Comparison, activities_by_code, quadrant


def _csv(header: list[str], rows: list[list]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([safe_cell("" if value is None else str(value)) for value in row])
    return buffer.getvalue()


EXERCISE_COLUMNS = [
    "exercise_id", "exercise", "partnership_id", "organisation", "side", "status",
    "activity_code", "activity_name", "stage", "benefit", "investment", "quadrant",
    "benefit_factors", "investment_factors", "rationale", "implementation_notes",
]


def exercise_csv(exercise: PrioritisationExercise) -> str:
    known = activities_by_code()
    rows = []
    for rating in exercise.selected:
        activity = known.get(rating.activity_code)
        named = quadrant(rating.benefit, rating.investment)
        rows.append([
            exercise.id, exercise.name, exercise.partnership_id, exercise.organisation.name,
            exercise.side, exercise.status, rating.activity_code,
            activity.name if activity else "", activity.stage if activity else "",
            rating.benefit or "", rating.investment or "", named[0] if named else "",
            ";".join(rating.benefit_factors or []), ";".join(rating.investment_factors or []),
            rating.rationale or "", rating.implementation_notes or "",
        ])
    return _csv(EXERCISE_COLUMNS, rows)


COMPARISON_COLUMNS = [
    "partnership_id", "sponsor_exercise", "patient_group_exercise", "activity_code",
    "activity_name", "sponsor_benefit", "sponsor_investment", "patient_group_benefit",
    "patient_group_investment", "outcome", "offered_by", "offered_to",
]


def comparison_csv(comparison: Comparison) -> str:
    """One row per activity of the pair: both sides' ratings and what the comparison finds."""
    names = [exercise.name if exercise is not None and exercise.is_completed else ""
             for exercise in (comparison.exercises[side] for side in PRIORITISATION_SIDES)]
    rows = []
    for row in comparison.rows:
        values = [comparison.partnership.id, *names, row.code, row.name]
        for side in PRIORITISATION_SIDES:
            rating = row.rating(side)
            values += [rating.benefit or "" if rating else "",
                       rating.investment or "" if rating else ""]
        values += [row.outcome or "", row.offered_by or "", row.offered_to or ""]
        rows.append(values)
    return _csv(COMPARISON_COLUMNS, rows)


def factor_labels(codes: list[str], kind: str) -> str:
    names = BENEFIT_FACTORS if kind == "benefit" else INVESTMENT_FACTORS
    return "; ".join(names.get(code, code) for code in codes or []) or "—"
