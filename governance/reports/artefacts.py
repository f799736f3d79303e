"""The report's files, all drawn from one snapshot: for each of its two documents (the public
disclosure and the internal governance report) a PDF, a CSV and a JSON (and the HTML preview)."""

import csv
import io
import json
from collections.abc import Callable
from dataclasses import dataclass

from .. import storage
from ..pdf import DEFAULT_OPTIONS, PdfOptions, html_to_pdf, render_html
from ..quality.measures import NOT_RECORDED
from ..spreadsheets import safe_cell
from .layout import flag_summary, flag_totals, pdf_listings
from .public import (
    approval_rows,
    individual_payment_rows,
    public_csv_rows,
    public_document,
    recipient_total_rows,
    report_title,
    sections,
)

PDF_TEMPLATE = "reports/pdf.html"
PUBLIC_PDF_TEMPLATE = "reports/public_pdf.html"

CSV_COLUMNS = (
    "id", "section", "organisation", "partnership", "date", "kind", "amount", "currency",
    "description", "partner_confirmation", "partner_note", "dimension", "rule", "severity",
    "subject", "state", "resolution_note", "resolved_at", "flags", "count", "rate",
    "shared_back_on",
)
PUBLIC_CSV_COLUMNS = (
    "id", "section", "organisation", "country", "date", "kind", "amount", "currency",
    "description", "agreement", "agreement_reference", "dimension", "state", "count", "rate",
)


@dataclass(frozen=True)
class Document:
    pdf: bytes
    csv: bytes
    json: bytes
    pages: int

    def by_kind(self) -> dict[str, bytes]:
        return {"pdf": self.pdf, "csv": self.csv, "json": self.json}


@dataclass(frozen=True)
class Artefacts:
    public: Document
    internal: Document

    def by_document(self) -> dict[str, Document]:
        return {"public": self.public, "internal": self.internal}


def template_context(snapshot: dict, for_pdf: bool) -> dict:
    """What the internal report's templates need (the PDF, and the HTML preview)."""
    context = {"r": snapshot, "for_pdf": for_pdf, "flag_summary": flag_summary(snapshot["flags"]),
               "flag_totals": flag_totals}
    if for_pdf:
        context["lists"] = pdf_listings(snapshot)
    else:
        context["flag_index"] = {flag["id"]: flag for flag in snapshot["flags"]}
    return context


def report_html(snapshot: dict) -> str:
    """The internal governance report's HTML, as WeasyPrint lays it out."""
    return render_html(PDF_TEMPLATE, template_context(snapshot, for_pdf=True))


def logo_of(document: dict) -> bytes | None:
    logo = (document.get("branding") or {}).get("logo")
    return storage.LOGOS.read(logo["sha256"]) if logo else None


def public_html(document: dict) -> str:
    """The public disclosure's HTML, as WeasyPrint lays it out."""
    from .public_layout import public_pdf_context

    return render_html(PUBLIC_PDF_TEMPLATE, public_pdf_context(document, logo_of(document)))


def estimated_pages(snapshot: dict) -> int:
    """A rough page count of both documents, so that progress can be shown while the pages
    are laid out."""
    organisations = sections(snapshot)
    lines = sum(len(recipient["lines"]) for recipient in organisations)
    interactions = snapshot["interactions"]["count"]
    groups = len(snapshot["interactions"]["partnerships"])
    internal = 5 + lines // 28 + len(organisations) // 6 + interactions // 45 \
        + groups // 12 + len(snapshot["flags"]) // 40 + len(snapshot["priorities"]) // 30 \
        + _quality_pages(snapshot.get("quality"))
    public = 4 + lines // 30 + len(organisations) // 4
    return max(1, internal + public)


def _quality_pages(quality: dict | None) -> int:
    if not quality:
        return 0
    return 1 + len(quality["first_engagement"]) // 40 \
        + len(quality["you_said_we_did"]["lines"]) // 30


def build_artefacts(snapshot: dict, options: PdfOptions = DEFAULT_OPTIONS,
                    on_page: Callable[[int], None] | None = None) -> Artefacts:
    """Both documents of the snapshot; `on_page` hears the pages laid out, counted over both."""
    document = public_document(snapshot)
    public_pdf = html_to_pdf(public_html(document), options, on_page)
    shifted = None if on_page is None else (lambda page: on_page(public_pdf.pages + page))
    internal_pdf = html_to_pdf(report_html(snapshot), options, shifted)
    return Artefacts(
        public=Document(public_pdf.content, _csv(PUBLIC_CSV_COLUMNS, public_csv_rows(document)),
                        snapshot_json(document), public_pdf.pages),
        internal=Document(internal_pdf.content, snapshot_csv(snapshot), snapshot_json(snapshot),
                          internal_pdf.pages),
    )


def snapshot_json(snapshot: dict) -> bytes:
    return (json.dumps(snapshot, ensure_ascii=False, indent=1) + "\n").encode("utf-8")


def snapshot_from_json(content: bytes) -> dict:
    return json.loads(content.decode("utf-8"))


def snapshot_csv(snapshot: dict) -> bytes:
    """One row per line of the internal report, each with its stable id; a `section` column
    says what kind of line it is."""
    return _csv(CSV_COLUMNS, csv_rows(snapshot))


def _csv(columns: tuple[str, ...], rows) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: safe_cell("" if value is None else value)
                         for key, value in row.items()})
    return out.getvalue().encode("utf-8")


def csv_rows(snapshot: dict):
    report = snapshot["report"]
    yield {"id": report["id"], "section": "report",
           "organisation": report["organisation"]["name"],
           "date": report["generated_at"], "state": report["status"],
           "description": report_title(report)}
    for recipient in sections(snapshot):
        name = recipient["name"]
        for line in recipient["lines"]:
            yield {"id": line["id"], "section": "support", "organisation": name,
                   "partnership": line["partnership"]["title"], "date": line["paid_on"],
                   "kind": line["kind"], "amount": line["amount"], "currency": line["currency"],
                   "description": line["description"],
                   "partner_confirmation": line["confirmation"]["state"],
                   "partner_note": line["confirmation"]["note"]}
        yield from recipient_total_rows(recipient)
    interactions = snapshot["interactions"]
    for row in interactions["adherence"]:
        yield {"id": row["id"], "section": "adherence", "dimension": row["dimension"],
               "count": row["interactions"], "rate": row["rate"],
               "description": f"{row['met']} without an open flag; {row['with_open_flag']} with "
                              f"an open flag; {row['kept_with_justification']} kept with a "
                              "justification"}
    for group in interactions["partnerships"]:
        for line in group["lines"]:
            confirmation = line["confirmation"] or {}
            yield {"id": line["id"], "section": "interaction",
                   "organisation": line["organisation"], "partnership": group["title"],
                   "date": line["occurred_on"], "kind": line["format"],
                   "description": line["title"],
                   "partner_confirmation": confirmation.get("state", "not_applicable"),
                   "partner_note": confirmation.get("note"), "flags": " ".join(line["flags"])}
    for flag in snapshot["flags"]:
        yield {"id": flag["id"], "section": "flag", "date": flag["raised_at"],
               "dimension": flag["dimension"], "rule": flag["rule"],
               "severity": flag["severity"], "subject": flag["subject"],
               "description": flag["message"], "state": flag["state"],
               "resolution_note": flag["note"], "resolved_at": flag["resolved_at"]}
    for priority in snapshot["priorities"]:
        yield {"id": priority["id"], "section": "priority",
               "organisation": priority["partnership"]["partner"],
               "partnership": priority["partnership"]["title"],
               "kind": priority["activity_code"], "description": priority["activity"],
               "count": priority["interactions_in_year"], "date": priority["last_worked_on"]}
    yield from quality_rows(snapshot.get("quality"))
    for exception in snapshot.get("exceptions") or []:
        acknowledged = exception.get("acknowledgement") or {}
        yield {"id": exception["id"], "section": "exception", "kind": exception["kind"],
               "subject": exception["subject"], "description": exception["message"],
               "state": "acknowledged" if acknowledged else "open",
               "resolution_note": acknowledged.get("reason"),
               "resolved_at": acknowledged.get("at")}
    yield from individual_payment_rows(snapshot.get("individual_payments"))
    approval = snapshot["approval"]
    if approval:
        yield from approval_rows(report["id"], approval["name"], approval)


def quality_rows(quality: dict | None):
    """The quality measures' lines (a snapshot made before them has none)."""
    if not quality:
        return
    for row in quality["lifecycle_stages"]:
        yield {"id": row["id"], "section": "lifecycle_stage",
               "kind": row["stage"] or NOT_RECORDED, "count": row["interactions"]}
    for row in quality["first_engagement"]:
        yield {"id": row["id"], "section": "first_engagement",
               "partnership": row["partnership"]["title"], "subject": row["partnership"]["id"],
               "kind": row["stage"] or NOT_RECORDED, "date": row["first_held_on"]}
    needs = quality["patient_needs"]
    for row in needs["by_need"]:
        yield {"id": row["id"], "section": "patient_need", "kind": row["need"],
               "count": row["interactions"],
               "state": "served" if row["interactions"] else "not_served"}
    for line in quality["you_said_we_did"]["lines"]:
        yield {"id": line["id"], "section": "you_said_we_did", "subject": line["interaction"],
               "partnership": line["partnership"], "date": line["occurred_on"],
               "description": line["what_changed"],
               "state": "shared_back" if line["shared_back_on"] else "not_shared_back",
               "shared_back_on": line["shared_back_on"]}
    for row in quality["practices"]:
        yield {"id": row["id"], "section": "engagement_practice", "kind": row["practice"],
               "count": row["interactions"], "rate": row["rate"]}
