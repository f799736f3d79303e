"""The public disclosure, drawn from the report's one frozen snapshot.

The snapshot (the internal governance report's JSON) holds everything the year's records say;
the public disclosure keeps what the disclosure codes require and an outside reader needs
(DOMAIN.md, "Transparency reports"): the support lines with their agreement, the totals, the
payments to individuals in aggregate, the methodology, adherence per dimension as figures, and
the titles of the interactions marked publishable. It names no member of staff and quotes no
flag, flag note, resolution, partner's note or dispute: those stay in the internal report.

Every value is copied by name from the snapshot, never the snapshot's dicts themselves, so
anything added to the snapshot later stays internal unless it is named here.
"""

PUBLIC_SCHEMA = "governance.transparency-disclosure/1"

# Where a report's lines are, by side (services.side_of): the organisations a sponsor
# supported, or the companies that funded a patient group.
SECTIONS = {"given": "recipients", "received": "funders"}


def side(document: dict) -> str:
    return document["report"].get("side") or "given"


def sections(document: dict) -> list[dict]:
    """The per-organisation sections of a snapshot or public document."""
    return document[SECTIONS[side(document)]]

_GIVEN_RULES = (
    "Support lines: every support entry recorded in a partnership of which the reporting "
    "organisation is the sponsor, with a payment date in the calendar year. Voided entries are "
    "left out. Each line keeps its stable id (support-N) across versions of the report, in the "
    "CSV and JSON files.",
    "Amounts are shown as recorded, in their own currency; totals are per currency. Where a "
    "reporting currency is chosen, totals are also given in it at the rates stated below.",
    "Contracted services are totalled per organisation and per currency.",
    "Share of income: the organisation's support to a group in the year, in the currency of the "
    "group's recorded annual income, divided by that income. It is left out when the income is "
    "not known or no support was paid in that currency.",
    "Payments to individuals (ABPI clause 30): fees and expenses paid in the year to patients, "
    "caregivers and other members of the public for a service, in aggregate by service and "
    "currency; no individual is identified.",
    "Adherence: for each good-practice dimension, the share of the year's held interactions "
    "with no open or acknowledged flag of that dimension, on the interaction or its partnership "
    "(a dismissed flag did not apply; a remediated one was put right).",
    "Interaction titles are published only where the record is marked publishable.",
)
_RECEIVED_RULES = (
    "Funding received: every support line a company recorded as paid to the group in the "
    "calendar year and the group confirmed. Each line keeps its stable id (support-N), the same "
    "as in the company's own disclosure, in the CSV and JSON files.",
    "Amounts are shown in the currency received; totals are per currency. Where a reporting "
    "currency is chosen, totals are also given in it at the rates stated below.",
    "Share of income: each company's funding in the year, in the currency of the group's "
    "annual income, divided by that income; left out when the income is not known.",
    _GIVEN_RULES[5],  # adherence
    _GIVEN_RULES[6],  # publishable titles
)
PUBLIC_METHOD_RULES = {"given": _GIVEN_RULES, "received": _RECEIVED_RULES}


def _copy(source: dict, *keys: str) -> dict:
    return {key: source.get(key) for key in keys}


def _agreement(agreement: dict | None) -> dict | None:
    return None if agreement is None else _copy(agreement, "id", "reference", "kind",
                                                 "signed_on")


def _line(line: dict) -> dict:
    return _copy(line, "id", "paid_on", "kind", "amount", "currency", "description") | {
        "agreement": _agreement(line.get("agreement"))}


def _recipient(recipient: dict) -> dict:
    contracted = recipient.get("contracted_services")
    return _copy(recipient, "id", "name", "kind", "country", "share_of_income") | {
        "totals": [_copy(total, "currency", "amount") for total in recipient["totals"]],
        "contracted_services": None if not contracted else {
            "totals": [_copy(total, "currency", "amount") for total in contracted["totals"]],
            "descriptions": list(contracted["descriptions"])},
        "lines": [_line(line) for line in recipient["lines"]],
    }


def _adherence(row: dict) -> dict:
    return _copy(row, "id", "dimension", "interactions", "met", "rate")


def _publishable_interactions(interactions: dict) -> list[dict]:
    return [_copy(line, "id", "occurred_on", "format", "title") | {"partner": group["partner"]}
            for group in interactions["partnerships"] for line in group["lines"]
            if line.get("publishable")]


def signatory(organisation_name: str) -> str:
    """Who signed, as the public document says it: by role, never by name."""
    return f"The nominated signatory of {organisation_name}"


def _approval(snapshot: dict) -> dict | None:
    approval = snapshot.get("approval")
    if not approval:
        return None
    return {"signatory": signatory(snapshot["report"]["organisation"]["name"]),
            "signed_at": approval["signed_at"], "meaning": approval["meaning"],
            # The audit chain's head at publication: an anchor anyone may check the trail by.
            "audit_head": approval.get("audit_head")}


def _report(report: dict) -> dict:
    return _copy(report, "id", "year", "period", "version", "status", "generated_at",
                 "published_at", "corrects") | {
        "organisation": _copy(report["organisation"], "id", "name", "kind", "country"),
        "scope": report.get("scope") or {"country": None, "label": "All countries"},
        "reporting_currency": report.get("reporting_currency"),
        "side": report.get("side") or "given",
    }


def _summary(snapshot: dict) -> dict:
    totals = snapshot["totals"]
    return _copy(totals, SECTIONS[side(snapshot)], "lines", "unvalued_lines", "by_currency",
                 "by_kind") | {
        "in_reporting_currency": totals.get("in_reporting_currency")}


def public_document(snapshot: dict) -> dict:
    """The public disclosure of a transparency report's snapshot (design: docs of #19)."""
    interactions = snapshot["interactions"]
    methodology = snapshot["methodology"]
    return {
        "schema": PUBLIC_SCHEMA,
        "document": "public",
        "report": _report(snapshot["report"]),
        "branding": snapshot.get("branding") or {"colour": None, "logo": None},
        "methodology": {"note": methodology["note"],
                        "rules": list(PUBLIC_METHOD_RULES[side(snapshot)]),
                        "exchange_rates": methodology.get("exchange_rates") or []},
        "summary": _summary(snapshot),
        SECTIONS[side(snapshot)]: [_recipient(recipient) for recipient in sections(snapshot)],
        "individual_payments": snapshot.get("individual_payments")
        or {"individuals": 0, "by_service": [], "totals": []},
        "adherence": [_adherence(row) for row in interactions["adherence"]],
        "interactions": {"count": interactions["count"],
                         "by_format": list(interactions["by_format"]),
                         "publishable": _publishable_interactions(interactions)},
        "policy": _policy(snapshot),
        "approval": _approval(snapshot),
    }


def _policy(snapshot: dict) -> dict | None:
    """The policy that judged the interactions; its co-creation by organisation and date, never
    by the names of the partners who signed it off."""
    policy = snapshot.get("policy")
    if not policy:
        return None
    co_creation = policy["co_creation"]
    return _copy(policy, "version", "in_force_since", "sha256") | {
        "co_creation": _copy(co_creation, "recorded", "statement", "signed_off_by")}


def public_csv_rows(document: dict):
    """One row per line of the public disclosure, each with its stable id."""
    report = document["report"]
    yield {"id": report["id"], "section": "report",
           "organisation": report["organisation"]["name"], "date": report["generated_at"],
           "state": report["status"], "description": report_title(report)}
    for recipient in sections(document):
        name = recipient["name"]
        for line in recipient["lines"]:
            agreement = line["agreement"] or {}
            yield {"id": line["id"], "section": "support", "organisation": name,
                   "country": recipient["country"], "date": line["paid_on"],
                   "kind": line["kind"], "amount": line["amount"], "currency": line["currency"],
                   "description": line["description"], "agreement": agreement.get("id"),
                   "agreement_reference": agreement.get("reference")}
        for row in recipient_total_rows(recipient):
            yield row | {"country": recipient["country"]}
    converted = document["summary"]["in_reporting_currency"]
    if converted:
        yield {"id": f"{report['id']}-total-{converted['currency']}",
               "section": "total_in_reporting_currency", "amount": converted["total"],
               "currency": converted["currency"],
               "description": "All support, converted at the rates of the methodology"}
    for rate in document["methodology"]["exchange_rates"]:
        yield {"id": f"rate-{rate['currency']}-{rate['into']}", "section": "exchange_rate",
               "currency": rate["currency"], "rate": rate["rate"],
               "description": f"1 {rate['currency']} = {rate['rate']} {rate['into']}"}
    for row in document["adherence"]:
        yield {"id": row["id"], "section": "adherence", "dimension": row["dimension"],
               "count": row["interactions"], "rate": row["rate"],
               "description": f"{row['met']} of {row['interactions']} held interactions "
                              "without an open or acknowledged flag"}
    for line in document["interactions"]["publishable"]:
        yield {"id": line["id"], "section": "interaction", "organisation": line["partner"],
               "date": line["occurred_on"], "kind": line["format"], "description": line["title"]}
    yield from individual_payment_rows(document["individual_payments"])
    approval = document["approval"]
    if approval:
        yield from approval_rows(report["id"], approval["signatory"], approval)


def recipient_total_rows(recipient: dict):
    """A recipient's totals, contracted-services totals and share of income, as CSV rows (the
    public and the internal files alike)."""
    name = recipient["name"]
    for total in recipient["totals"]:
        yield {"id": f"total-{recipient['id']}-{total['currency']}", "section": "total",
               "organisation": name, "amount": total["amount"], "currency": total["currency"],
               "description": "Total support in the year"}
    contracted = recipient["contracted_services"]
    for total in (contracted or {}).get("totals", []):
        yield {"id": f"contracted-services-{recipient['id']}-{total['currency']}",
               "section": "contracted_services_total", "organisation": name,
               "kind": "contracted_service", "amount": total["amount"],
               "currency": total["currency"],
               "description": "; ".join(contracted["descriptions"])}
    share = recipient["share_of_income"]
    if share:
        yield {"id": f"share-of-income-{recipient['id']}", "section": "share_of_income",
               "organisation": name, "amount": share["support"], "currency": share["currency"],
               "rate": share["percent"],
               "description": f"Share of the annual income of {share['currency']} "
                              f"{share['annual_income']}"}


def individual_payment_rows(payments: dict | None):
    """The payments to individuals in aggregate, as CSV rows (older snapshots have none)."""
    payments = payments or {}
    for row in payments.get("by_service", []):
        yield {"id": row["id"], "section": "individual_payments", "kind": row["service"],
               "amount": row["total_fees"], "currency": row["currency"],
               "count": row["individuals"],
               "description": f"Fees to {_count(row['individuals'], 'individual')} in "
                              f"{_count(row['payments'], 'payment')}; expenses "
                              f"{row['currency']} {row['total_expenses']}"}
    for row in payments.get("totals", []):
        yield {"id": row["id"], "section": "individual_payments_total",
               "amount": row["total_fees"], "currency": row["currency"],
               "count": payments["individuals"],
               "description": f"Total fees in {_count(row['payments'], 'payment')} to "
                              f"{_count(payments['individuals'], 'individual')}; total "
                              f"expenses {row['currency']} {row['total_expenses']}"}


def approval_rows(report_id: str, signer: str, approval: dict):
    """The signature, and the audit chain's head at publication (none in reports published
    before the chain had heads), as CSV rows."""
    yield {"id": f"{report_id}-approval", "section": "approval", "date": approval["signed_at"],
           "description": f"Signed by {signer}: {approval['meaning']}"}
    head = approval.get("audit_head")
    if head:
        yield {"id": f"{report_id}-audit-head", "section": "audit_head",
               "count": head["sequence"], "description": head["hash"]}


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def report_title(report: dict) -> str:
    """The report's name in a CSV row: its year, version, scope and what it corrects."""
    kind = "Funding received" if report.get("side") == "received" else "Transparency report"
    title = f"{kind} {report['year']}, version {report['version']}"
    if (report.get("scope") or {}).get("country"):
        title += f", {report['scope']['label']}"
    if report["corrects"]:
        title += (f", correcting version {report['corrects']['version']}: "
                  f"{report['corrects']['reason']}")
    return title
