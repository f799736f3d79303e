"""A patient group's funding received, set beside what each company disclosed.

Both sides speak of the same support lines (`support-N`): a company discloses the lines it
recorded as paid to the group, the group the lines it confirmed. For one group and year, each
side is read from its latest published disclosure (the public files, frozen), or, while a side
has published nothing for the year, from the records as they stand (a company's lines as it
recorded them; the group's as it confirmed them). The differences: a line on one side only, or
on both with another amount or another date.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import select

from .. import storage
from ..extensions import db
from ..organisations.models import Organisation
from .artefacts import snapshot_from_json
from .models import ALL_COUNTRIES, Report
from .public import sections

DIFFERENCES = {
    "missing_from_group": "In the company's disclosure, not in the group's",
    "missing_from_company": "In the group's report, not in the company's disclosure",
    "amount_differs": "Amount differs",
    "date_differs": "Date differs",
}


@dataclass(frozen=True)
class Line:
    id: str
    paid_on: str
    kind: str
    amount: str | None
    currency: str
    description: str


@dataclass
class Source:
    """Where one side's lines were read from: a published report, or the records now."""

    label: str
    report: Report | None = None


@dataclass
class Difference:
    kind: str
    line_id: str
    company: Line | None
    group: Line | None

    @property
    def label(self) -> str:
        return DIFFERENCES[self.kind]


@dataclass
class CompanyReconciliation:
    company: Organisation
    source: Source
    lines: dict[str, Line] = field(default_factory=dict)
    group_lines: dict[str, Line] = field(default_factory=dict)
    differences: list[Difference] = field(default_factory=list)

    @property
    def rows(self) -> list[tuple[Line | None, Line | None]]:
        """Each line of either side, the company's beside the group's, by date."""
        ids = sorted(set(self.lines) | set(self.group_lines),
                     key=lambda key: ((self.lines.get(key) or self.group_lines[key]).paid_on,
                                      int(key.rsplit("-", 1)[1])))
        return [(self.lines.get(key), self.group_lines.get(key)) for key in ids]


@dataclass
class Reconciliation:
    group: Organisation
    year: int
    group_source: Source
    companies: list[CompanyReconciliation]

    @property
    def difference_count(self) -> int:
        return sum(len(company.differences) for company in self.companies)


def reconcile(group: Organisation, year: int) -> Reconciliation:
    group_lines, group_source = _group_side(group, year)
    company_sides = _company_sides(group, year)
    by_company: dict[int, dict[str, Line]] = defaultdict(dict)
    for company_id, line in group_lines:
        by_company[company_id][line.id] = line
    companies = []
    for company_id in sorted(set(company_sides) | set(by_company),
                             key=lambda key: _organisation(key).name.casefold()):
        lines, source = company_sides.get(company_id, ({}, Source("nothing recorded")))
        entry = CompanyReconciliation(_organisation(company_id), source, lines,
                                      by_company.get(company_id, {}))
        entry.differences = _differences(entry)
        companies.append(entry)
    return Reconciliation(group, year, group_source, companies)


def _differences(entry: CompanyReconciliation) -> list[Difference]:
    found = []
    for company, group in entry.rows:
        line_id = (company or group).id
        if group is None:
            found.append(Difference("missing_from_group", line_id, company, None))
        elif company is None:
            found.append(Difference("missing_from_company", line_id, None, group))
        else:
            if (company.amount, company.currency) != (group.amount, group.currency):
                found.append(Difference("amount_differs", line_id, company, group))
            if company.paid_on != group.paid_on:
                found.append(Difference("date_differs", line_id, company, group))
    return found


def _organisation(organisation_id: int) -> Organisation:
    return db.session.get(Organisation, organisation_id)


def _line(data: dict) -> Line:
    return Line(data["id"], data["paid_on"], data["kind"], data["amount"], data["currency"],
                data["description"])


def _latest_published(organisation_id: int, year: int) -> Report | None:
    return db.session.scalar(
        select(Report).where(Report.organisation_id == organisation_id, Report.year == year,
                             Report.country_scope == ALL_COUNTRIES,
                             Report.published_at.is_not(None), Report.voided_at.is_(None))
        .order_by(Report.revision.desc()).limit(1))


def _published_document(report: Report) -> dict | None:
    try:
        return snapshot_from_json(storage.REPORTS.read(report.sha256_of("json", "public")))
    except storage.MissingFile:
        return None


def _published_label(report: Report) -> str:
    return f"published report, version {report.revision}"


def _group_side(group: Organisation, year: int) -> tuple[list[tuple[int, Line]], Source]:
    """The group's lines with the company of each: from its published report, or the lines it
    has confirmed."""
    from ..partnerships.models import Partnership, Support

    report = _latest_published(group.id, year)
    document = _published_document(report) if report else None
    if document is not None:
        names = {company["id"]: company for company in sections(document)}
        return ([(int(company_id.rsplit("-", 1)[1]), _line(line))
                 for company_id, company in names.items() for line in company["lines"]],
                Source(_published_label(report), report))
    rows = db.session.execute(
        _line_query(Support, Partnership).where(
            Support.recipient_id == group.id, Support.confirmed_by_partner == "confirmed",
            *_in_year(Support, year))
    ).all()
    return ([(row.sponsor_id, _record_line(row)) for row in rows],
            Source("lines confirmed so far (no report published for the year)"))


def _company_sides(group: Organisation, year: int) -> dict[int, tuple[dict[str, Line], Source]]:
    """Each company's lines to the group: from its published disclosure, or as recorded."""
    from ..partnerships.models import Partnership, Support

    recorded: dict[int, dict[str, Line]] = defaultdict(dict)
    for row in db.session.execute(
        _line_query(Support, Partnership).where(Support.recipient_id == group.id,
                                                *_in_year(Support, year))
    ):
        recorded[row.sponsor_id][f"support-{row.id}"] = _record_line(row)
    sides = {company_id: (lines, Source("recorded, not yet published"))
             for company_id, lines in recorded.items()}
    group_key = f"organisation-{group.id}"
    companies = set(recorded) | set(db.session.scalars(
        select(Partnership.sponsor_id).where(Partnership.patient_group_id == group.id)))
    for company_id in companies - {group.id}:
        report = _latest_published(company_id, year)
        document = _published_document(report) if report else None
        if document is None or document["report"].get("side") == "received":
            continue
        lines = {line["id"]: _line(line) for recipient in sections(document)
                 if recipient["id"] == group_key for line in recipient["lines"]}
        if lines or company_id in sides:
            sides[company_id] = (lines, Source(_published_label(report), report))
    return sides


def _line_query(Support, Partnership):
    return (select(Support.id, Support.paid_on, Support.kind, Support.amount, Support.currency,
                   Support.description, Partnership.sponsor_id)
            .join(Partnership, Partnership.id == Support.partnership_id)
            .order_by(Support.paid_on, Support.id))


def _in_year(Support, year: int) -> list:
    return [Support.voided_at.is_(None), Support.paid_on >= date(year, 1, 1),
            Support.paid_on <= date(year, 12, 31)]


def _record_line(row) -> Line:
    from .services import money_text

    return Line(f"support-{row.id}", row.paid_on.isoformat(), row.kind, money_text(row.amount),
                row.currency, row.description)
