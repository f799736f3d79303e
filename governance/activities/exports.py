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
    "partnership_id", "side", "status", "activity_code", "activity_name", "stage", "benefit",
    "investment", "quadrant", "benefit_factors", "investment_factors", "rationale",
    "implementation_notes",
]


def exercise_csv(exercise: PrioritisationExercise) -> str:
    known = activities_by_code()
    rows = []
    for rating in exercise.selected:
        activity = known.get(rating.activity_code)
        named = quadrant(rating.benefit, rating.investment)
        rows.append([
            exercise.partnership_id, exercise.side, exercise.status, rating.activity_code,
            activity.name if activity else "", activity.stage if activity else "",
            rating.benefit or "", rating.investment or "", named[0] if named else "",
            ";".join(rating.benefit_factors or []), ";".join(rating.investment_factors or []),
            rating.rationale or "", rating.implementation_notes or "",
        ])
    return _csv(EXERCISE_COLUMNS, rows)


COMPARISON_COLUMNS = [
    "partnership_id", "activity_code", "activity_name", "sponsor_benefit", "sponsor_investment",
    "patient_group_benefit", "patient_group_investment", "mutual_priority",
    "priority_rank", "disagreement",
]


def comparison_csv(comparison: Comparison) -> str:
    ranks = {row.code: rank for rank, row in enumerate(comparison.mutual_priorities, start=1)}
    rows = []
    for row in comparison.rows:
        values = [comparison.partnership.id, row.code, row.name]
        for side in PRIORITISATION_SIDES:
            rating = row.rating(side)
            values += [rating.benefit or "" if rating else "",
                       rating.investment or "" if rating else ""]
        values += ["yes" if row.is_mutual_priority else "no", ranks.get(row.code, ""),
                   "yes" if row.is_disagreement else "no"]
        rows.append(values)
    return _csv(COMPARISON_COLUMNS, rows)


def factor_labels(codes: list[str], kind: str) -> str:
    names = BENEFIT_FACTORS if kind == "benefit" else INVESTMENT_FACTORS
    return "; ".join(names.get(code, code) for code in codes or []) or "—"
