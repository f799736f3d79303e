"""The lists as CSV and XLSX files, filtered as the lists are.

Every text cell passes through `safe_cell`, so a value such as =HYPERLINK(...) reaches the
spreadsheet as inert text; XLSX cells are also typed as strings, never as formulas. Columns
carry the services' field names, so the record columns of an export can be imported again (the
import removes the apostrophe an export puts before a formula-like cell).
"""

import csv
import io
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import select

from ..audit import AuditEvent
from ..extensions import db
from ..interactions.services import FIELDS as INTERACTION_FIELDS
from ..interactions.services import InteractionFilter, find_interactions
from ..partnerships.services import (
    PARTNERSHIP_FIELDS,
    SUPPORT_FIELDS,
    PartnershipFilter,
    SupportFilter,
    find_partnerships,
    find_supports,
)
from ..spreadsheets import safe_cell
from .csvfile import LIST_SEPARATOR

PAGE = 1000  # records read per query
RECORD_COLUMNS = ["created_at", "updated_at", "voided_at", "void_reason"]


@dataclass
class Table:
    name: str  # the file name, without extension
    title: str  # the sheet title
    columns: list[str]
    rows: Iterable[list]


def text_of(value) -> str:
    """A value as a CSV cell: ISO dates, decimal strings, true/false, lists joined with ';'."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return LIST_SEPARATOR.join(text_of(item) for item in value)
    return str(value)


def csv_chunks(table: Table) -> Iterator[str]:
    """Yield the CSV text (with a byte-order mark, so spreadsheet programs read UTF-8)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    buffer.write("\ufeff")
    writer.writerow(table.columns)
    for number, row in enumerate(table.rows, start=1):
        writer.writerow([safe_cell(text_of(value)) for value in row])
        if number % 500 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def xlsx_bytes(table: Table) -> bytes:
    """Write the table as a one-sheet workbook (openpyxl is imported here: it is slow to load)."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(table.title[:31])

    def cell_of(value):
        if isinstance(value, list | tuple):
            value = text_of(value)
        if isinstance(value, Decimal | int | float | bool | date) or value is None:
            return value
        text = ILLEGAL_CHARACTERS_RE.sub("\ufffd", str(value))  # control characters XLSX refuses
        cell = WriteOnlyCell(sheet, value=safe_cell(text))
        cell.data_type = "s"  # text, even if it looks like a formula
        return cell

    sheet.append([cell_of(name) for name in table.columns])
    for row in table.rows:
        sheet.append([cell_of(value) for value in row])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _pages(find: Callable, actor, criteria) -> Iterator:
    page_number = 1
    while True:
        page = find(actor, replace(criteria, page=page_number, per_page=PAGE))
        yield page.items
        if page_number * PAGE >= page.total:
            return
        page_number += 1


def _flag_summaries(column, ids: list[int]) -> dict[int, tuple[str, int]]:
    """For each record id, its flags as 'RULE (state)' joined with ';', and how many are open."""
    from ..rules.models import Flag

    flags: dict[int, list] = defaultdict(list)
    if ids:
        for owner, rule, state in db.session.execute(
            select(column, Flag.rule_id, Flag.state)
            .where(column.in_(ids), Flag.voided_at.is_(None)).order_by(Flag.id)
        ):
            flags[owner].append((rule, state))
    return {owner: (f"{LIST_SEPARATOR} ".join(f"{rule} ({state})" for rule, state in items),
                    sum(state == "open" for _rule, state in items))
            for owner, items in flags.items()}


def interactions_table(actor, criteria: InteractionFilter) -> Table:
    from ..rules.models import Flag

    columns = ["id", *INTERACTION_FIELDS, "partnership_title", "organisation_name",
               "confirmed_by_partner", "confirmation_note", "flags", "open_flags",
               *RECORD_COLUMNS]

    def rows():
        for items in _pages(find_interactions, actor, criteria):
            flags = _flag_summaries(Flag.interaction_id, [item.id for item in items])
            for item in items:
                summary, open_count = flags.get(item.id, ("", 0))
                yield [item.id, *(getattr(item, name) for name in INTERACTION_FIELDS),
                       item.partnership.title if item.partnership else None,
                       item.organisation.name, item.confirmed_by_partner,
                       item.confirmation_note, summary, open_count,
                       *(getattr(item, name) for name in RECORD_COLUMNS)]

    return Table("interactions", "Interactions", columns, rows())


def partnerships_table(actor, criteria: PartnershipFilter) -> Table:
    from ..rules.models import Flag

    columns = ["id", *PARTNERSHIP_FIELDS, "sponsor_name", "patient_group_name", "flags",
               "open_flags", *RECORD_COLUMNS]

    def rows():
        for items in _pages(find_partnerships, actor, criteria):
            flags = _flag_summaries(Flag.partnership_id, [item.id for item in items])
            for item in items:
                summary, open_count = flags.get(item.id, ("", 0))
                others = sorted(o.id for o in item.other_organisations)
                yield [item.id, *(others if name == "other_organisation_ids"
                                  else getattr(item, name) for name in PARTNERSHIP_FIELDS),
                       item.sponsor.name, item.patient_group.name, summary, open_count,
                       *(getattr(item, name) for name in RECORD_COLUMNS)]

    return Table("partnerships", "Partnerships", columns, rows())


def supports_table(actor, criteria: SupportFilter) -> Table:
    columns = ["id", *SUPPORT_FIELDS, "partnership_title", "recipient_name",
               "confirmed_by_partner", "confirmation_note", *RECORD_COLUMNS]

    def rows():
        for items in _pages(find_supports, actor, criteria):
            for item in items:
                yield [item.id, *(getattr(item, name) for name in SUPPORT_FIELDS),
                       item.partnership.title, item.recipient.name, item.confirmed_by_partner,
                       item.confirmation_note, *(getattr(item, name) for name in RECORD_COLUMNS)]

    return Table("support", "Support", columns, rows())


def agreements_table(actor, criteria) -> Table:
    """The agreements the actor may see, with their certification and what was paid under each."""
    from ..agreements.services import AGREEMENT_FIELDS, agreements_of, find_agreements

    columns = ["id", *AGREEMENT_FIELDS, "partnership_title", "certified_by", "certified_at",
               "certification_meaning", "lines", "paid", "remaining", *RECORD_COLUMNS]

    def rows():
        standings: dict[int, dict] = {}
        for items in _pages(find_agreements, actor, criteria):
            for item in items:
                if item.partnership_id not in standings:
                    standings[item.partnership_id] = {
                        s.agreement.id: s for s in agreements_of(item.partnership_id, True)}
                standing = standings[item.partnership_id][item.id]
                paid = "; ".join(f"{code} {amount:.2f}" for code, amount in standing.paid)
                yield [item.id, *(getattr(item, name) for name in AGREEMENT_FIELDS),
                       item.partnership.title,
                       item.certified_by.name if item.certified_by else None,
                       item.certified_at, item.certification_meaning, standing.lines, paid,
                       standing.remaining, *(getattr(item, name) for name in RECORD_COLUMNS)]

    return Table("agreements", "Agreements", columns, rows())


def audit_table(query) -> Table:
    """The audit events a SELECT of AuditEvent picks, oldest first."""
    columns = ["id", "occurred_at_utc", "actor", "action", "entity", "entity_id", "changes",
               "reason", "prev_hash", "hash"]
    table = AuditEvent.__table__
    selection = query.with_only_columns(*table.c).order_by(None).order_by(table.c.id)

    def rows():
        last_id = 0
        while True:
            batch = db.session.execute(
                selection.where(table.c.id > last_id).limit(PAGE)).mappings().all()
            if not batch:
                return
            for event in batch:
                yield [event["id"], event["occurred_at"], event["actor_label"], event["action"],
                       event["entity"], event["entity_id"], event["changes"], event["reason"],
                       event["prev_hash"], event["hash"]]
            last_id = batch[-1]["id"]

    return Table("audit-trail", "Audit trail", columns, rows())
