"""The PDF's long lists as fixed-width text blocks.

WeasyPrint's time grows with the number of boxes it lays out, far more than with the amount of
text: a table cell costs about as much as a whole line of text. So in the PDF the thousands of
support lines, interactions and flags are set in a monospaced font as aligned columns, one text
block per group (a recipient, a partnership, a rule) inside a table whose header row repeats on
every page. The HTML preview shows the same data as ordinary tables.

All text here is plain; the template escapes it.
"""

import textwrap
from dataclasses import dataclass, field

from ..vocabulary import (
    DIMENSIONS,
    FLAG_STATES,
    INTERACTION_FORMATS,
    ORGANISATION_KINDS,
    SUPPORT_KINDS,
)
from .presentation import report_date, report_money
from .public import sections

# The lists are set on landscape A4 pages (265 mm of line) in DejaVu Sans Mono at 7 pt, whose
# characters advance 0.60205 em: 178 characters fit on a line. Columns are padded with spaces:
# in a monospaced font every character advances the same, so the columns line up exactly
# (tab stops drift by a fraction of a point per character in WeasyPrint).
WIDTH = 174
GROUPS_PER_TABLE = 25
ANSWERS = {"confirmed": "Confirmed", "disputed": "Disputed", "pending": "Awaiting",
           "upheld": "Kept", "withdrawn": "Withdrawn", "not_answered": "Not answered"}
SHORT_FORMATS = {"pfdd_meeting": "PFDD meeting"}


@dataclass(frozen=True)
class Column:
    title: str
    width: int  # in characters, the space before the next column included
    right: bool = False

    def cell(self, value: str) -> str:
        value = value[:self.width - 2]
        return (value.rjust(self.width - 2) if self.right else value.ljust(self.width - 2)) \
            + "  "


@dataclass
class Group:
    anchor: str
    title: str
    lines: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@dataclass
class Listing:
    header: str
    tables: list[list[Group]]


def _flat(text: str | None) -> str:
    return " ".join((text or "").split())


def _wrap(text: str, width: int) -> list[str]:
    return textwrap.wrap(_flat(text), width, break_long_words=True,
                         break_on_hyphens=False) or [""]


def _lead(columns: list[Column], values: list[str]) -> str:
    return "".join(column.cell(value) for column, value in zip(columns, values, strict=True))


def _indent(columns: list[Column]) -> int:
    return sum(column.width for column in columns)


def _row(columns: list[Column], values: list[str], rest: str = "") -> list[str]:
    """One record: the fixed columns, then free text wrapped under its own column."""
    indent = _indent(columns)
    wrapped = _wrap(rest, WIDTH - indent)
    return [(_lead(columns, values) + wrapped[0]).rstrip()] + [" " * indent + line
                                                              for line in wrapped[1:]]


def _continued(columns: list[Column], text: str) -> list[str]:
    indent = _indent(columns)
    return [" " * indent + line for line in _wrap(text, WIDTH - indent)]


def _header(columns: list[Column], rest: str) -> str:
    return (_lead(columns, [column.title for column in columns]) + rest).rstrip()


def _facts(text: str) -> list[str]:
    return _wrap(text, WIDTH)


def _tables(groups: list[Group]) -> list[list[Group]]:
    return [groups[start:start + GROUPS_PER_TABLE]
            for start in range(0, len(groups), GROUPS_PER_TABLE)]


def _amounts(totals: list[dict]) -> str:
    return "; ".join(report_money(t["amount"], t["currency"]) for t in totals) or "not valued"


SUPPORT_COLUMNS = [Column("Line", 16), Column("Paid on", 12), Column("Kind", 20),
                   Column("Amount", 18, right=True), Column("Partner", 11)]


def support_listing(recipients: list[dict]) -> Listing:
    groups = []
    for recipient in recipients:
        kind = ORGANISATION_KINDS.get(recipient["kind"], recipient["kind"]).split(" (")[0]
        group = Group(recipient["id"], f"{recipient['name']}"
                      + (f" ({recipient['country']})" if recipient["country"] else "")
                      + f" — {kind.lower()}")
        count = len(recipient["lines"])
        facts = [f"{count} line{'s' if count != 1 else ''}",
                 f"total {_amounts(recipient['totals'])}"]
        contracted = recipient["contracted_services"]
        if contracted:
            facts.append(f"contracted services {_amounts(contracted['totals'])} ("
                         + "; ".join(_flat(d) for d in contracted["descriptions"]) + ")")
        share = recipient["share_of_income"]
        if share:
            facts.append(f"{share['percent']} % of its annual income of "
                         f"{report_money(share['annual_income'], share['currency'])}"
                         + (f" (support in {', '.join(share['other_currencies_left_out'])} "
                            "not counted)" if share["other_currencies_left_out"] else ""))
        elif recipient["kind"] == "patient_group":
            facts.append("annual income not known")
        group.lines.extend(_facts(" · ".join(facts)))
        for line in recipient["lines"]:
            answer = line["confirmation"]
            group.lines.extend(_row(SUPPORT_COLUMNS, [
                line["id"], line["paid_on"], SUPPORT_KINDS.get(line["kind"], line["kind"]),
                report_money(line["amount"], line["currency"]),
                ANSWERS.get(answer["state"], answer["state"])], line["description"]))
            if answer["note"]:
                group.lines.extend(_continued(SUPPORT_COLUMNS,
                                              f"Partner's note: “{answer['note']}”"))
            if answer.get("answer"):
                group.lines.extend(_continued(SUPPORT_COLUMNS,
                                              f"Kept because: “{answer['answer']}”"))
        groups.append(group)
    return Listing(_header(SUPPORT_COLUMNS, "Description"), _tables(groups))


INTERACTION_COLUMNS = [Column("Interaction", 20), Column("Date", 12), Column("Format", 19),
                       Column("Partner", 11)]


def interaction_listing(interactions: dict, flags: list[dict]) -> Listing:
    """Each interaction on one line: its partner's answer and its flags (rule and state).

    Titles stay out of the PDF (they are in the CSV and JSON files): the PDF summarises the
    interactions per dimension and shows, line by line, what the partner answered.
    """
    flag_by_id = {flag["id"]: flag for flag in flags}
    groups = []
    for partnership in interactions["partnerships"]:
        if partnership["title"]:
            title = partnership["title"] + (f" — with {partnership['partner']}"
                                            if partnership["partner"] else "")
        else:
            title = "Outside any partnership"
        group = Group(partnership["id"], title)
        count = len(partnership["lines"])
        answers = partnership["confirmation"]
        facts = f"{count} interaction{'s' if count != 1 else ''} · " + (
            f"partner confirmed {answers['confirmed']}, disputed {answers['disputed']}, "
            f"not yet answered {answers['pending']}" if partnership["title"]
            else "no partner to confirm them")
        group.lines.extend(_facts(facts))
        for line in partnership["lines"]:
            answer = line["confirmation"]
            kind = SHORT_FORMATS.get(line["format"]) or INTERACTION_FORMATS.get(
                line["format"], line["format"])
            notes = _flag_notes(line["flags"], flag_by_id)
            if answer and answer["note"]:
                notes.append(f"partner's note: “{answer['note']}”")
            if answer and answer.get("answer"):
                notes.append(f"kept because: “{answer['answer']}”")
            group.lines.extend(_row(INTERACTION_COLUMNS, [
                line["id"], line["occurred_on"], kind,
                ANSWERS.get(answer["state"], answer["state"]) if answer else "—"],
                "; ".join(notes)))
        groups.append(group)
    return Listing(_header(INTERACTION_COLUMNS, "Flags and notes"), _tables(groups))


def _flag_notes(ids: list[str], flag_by_id: dict[str, dict]) -> list[str]:
    notes = []
    for flag_id in ids:
        flag = flag_by_id.get(flag_id)
        if flag is None:
            continue
        state = FLAG_STATES.get(flag["state"], flag["state"]).lower()
        notes.append(f"{flag['rule']} {state}" if flag["state"] == "open"
                     else f"{flag['rule']} {state} ({flag_id})")
    return notes


FLAG_COLUMNS = [Column("Flag", 13), Column("On", 20), Column("Raised", 12), Column("State", 14),
                Column("Resolved", 12)]


def flag_listing(flags: list[dict]) -> Listing:
    """The flags that were resolved, and every flag on a partnership, grouped by rule.

    Open flags on interactions are shown on the interaction's own line; the summary table by
    rule counts them all.
    """
    by_rule: dict[str, list[dict]] = {}
    for flag in flags:
        if flag["state"] != "open" or not flag["subject"].startswith("interaction-"):
            by_rule.setdefault(flag["rule"], []).append(flag)
    groups = []
    for rule in sorted(by_rule):
        items = by_rule[rule]
        first = items[0]
        group = Group(f"rule-{rule}", f"{rule} — {DIMENSIONS.get(first['dimension'], '')}, "
                                      f"{first['severity']} severity")
        for item in items:
            resolution = ""
            if item["resolved_by"]:
                resolution = f"by {item['resolved_by']}"
            if item["note"]:
                resolution += (": " if resolution else "") + item["note"]
            group.lines.extend(_row(FLAG_COLUMNS, [
                item["id"], item["subject"], (item["raised_at"] or "")[:10],
                FLAG_STATES.get(item["state"], item["state"]),
                (item["resolved_at"] or "")[:10]], resolution))
        groups.append(group)
    return Listing(_header(FLAG_COLUMNS, "How it was resolved"), _tables(groups))


def flag_summary(flags: list[dict]) -> list[dict]:
    """Per rule: its dimension and severity, and how many of its flags are in each state."""
    rules: dict[str, dict] = {}
    for flag in flags:
        row = rules.setdefault(flag["rule"], {
            "rule": flag["rule"], "dimension": flag["dimension"], "severity": flag["severity"],
            "raised": 0, **dict.fromkeys(FLAG_STATES, 0)})
        row["raised"] += 1
        row[flag["state"]] += 1
    return [rules[rule] for rule in sorted(rules)]


PRIORITY_COLUMNS = [Column("Activity", 11), Column("Interactions", 14, right=True),
                    Column("Last worked on", 16)]


def priority_listing(priorities: list[dict]) -> Listing:
    groups: dict[str, Group] = {}
    for item in priorities:
        partnership = item["partnership"]
        group = groups.get(partnership["id"])
        if group is None:
            group = groups[partnership["id"]] = Group(
                f"priorities-{partnership['id']}", partnership["title"]
                + (f" — with {partnership['partner']}" if partnership["partner"] else ""))
        group.lines.extend(_row(PRIORITY_COLUMNS, [
            item["activity_code"], str(item["interactions_in_year"]),
            report_date(item["last_worked_on"]) if item["last_worked_on"] else "not this year",
        ], item["activity"]))
    return Listing(_header(PRIORITY_COLUMNS, "Activity"), _tables(list(groups.values())))


OUTCOME_COLUMNS = [Column("Interaction", 20), Column("Held on", 12), Column("Shared back", 14)]


def outcome_listing(quality: dict | None) -> Listing:
    """The year's "you said, we did" lines by partnership: the interaction, when it was held
    and when its outcome was shared back, then what changed (titles, as in the interactions'
    listing, are in the CSV and JSON files)."""
    lines = (quality or {}).get("you_said_we_did", {}).get("lines", [])
    groups: dict[str, Group] = {}
    for line in lines:
        title = line["partnership"] or "Outside any partnership"
        group = groups.get(title)
        if group is None:
            group = groups[title] = Group(f"outcomes-{len(groups) + 1}", title)
        group.lines.extend(_row(OUTCOME_COLUMNS, [
            line["interaction"], line["occurred_on"], line["shared_back_on"] or "not shared"],
            line["what_changed"]))
    ordered = sorted(groups.values(), key=lambda group: (group.title == "Outside any partnership",
                                                         group.title.casefold()))
    return Listing(_header(OUTCOME_COLUMNS, "What changed because of the patients' input"),
                   _tables(ordered))


def flag_totals(summary: list[dict]) -> dict[str, int]:
    return {state: sum(row[state] for row in summary) for state in FLAG_STATES}


def pdf_listings(snapshot: dict) -> dict[str, Listing]:
    return {
        "support": support_listing(sections(snapshot)),
        "interactions": interaction_listing(snapshot["interactions"], snapshot["flags"]),
        "flags": flag_listing(snapshot["flags"]),
        "priorities": priority_listing(snapshot["priorities"]),
        "outcomes": outcome_listing(snapshot.get("quality")),
    }

