"""Exports of an exercise and of a comparison: CSV rows and a PDF rendered by WeasyPrint."""

import csv
import io
from dataclasses import dataclass

from flask import render_template
from weasyprint import HTML, URLFetcher

from ..vocabulary import BENEFIT_FACTORS, INVESTMENT_FACTORS, PRIORITISATION_SIDES
from .models import PrioritisationExercise
from .services import Comparison, activities_by_code, quadrant


class LocalOnlyFetcher(URLFetcher):
    """Refuse every URL except inline data: the PDF can reach neither files nor the network."""

    def __init__(self):
        super().__init__(allowed_protocols=("data",), allow_redirects=False)


@dataclass(frozen=True)
class PdfOptions:
    base_url: str = "about:blank"
    media_type: str = "print"


def render_pdf(template: str, context: dict, options: PdfOptions = PdfOptions()) -> bytes:
    """Render a template to PDF bytes; every resource must be inline."""
    html = render_template(template, **context)
    document = HTML(string=html, base_url=options.base_url, url_fetcher=LocalOnlyFetcher(),
                    media_type=options.media_type)
    return document.write_pdf()


def _cell(value) -> str:
    """Neutralise spreadsheet formulas in free text (CSV injection)."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _csv(header: list[str], rows: list[list]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([_cell(value) for value in row])
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
