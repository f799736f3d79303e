"""The facts a policy condition can read: a flat dict per record, computed here in code.

Conditions and thresholds are data (policies/rules.toml); what a fact *means* is code, so it is
defined once, with its type and a description that the policy page shows to compliance officers.
Facts are plain numbers, booleans and strings (no lists or dates) so that evaluation stays cheap.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal


@dataclass(frozen=True)
class FactType:
    """A fact's type, named as rule-engine names its data types (rule-engine itself is imported
    only when conditions are compiled: it takes most of a second to import)."""

    name: str  # FLOAT, STRING, BOOLEAN, or NULLABLE around inner_type
    inner_type: "FactType | None" = None

    def data_type(self):
        """Return rule-engine's DataType of this type."""
        from rule_engine import DataType

        if self.inner_type is not None:
            return DataType.NULLABLE(self.inner_type.data_type())
        return getattr(DataType, self.name)


NUMBER = FactType("FLOAT")
TEXT = FactType("STRING")
FLAG = FactType("BOOLEAN")
MAYBE_NUMBER = FactType("NULLABLE", NUMBER)
MAYBE_TEXT = FactType("NULLABLE", TEXT)

DAYS_PER_MONTH = 30.4375
DISEASE_STAGES_COVERED_BY_ALL = frozenset({"early", "intermediate", "late"})


@dataclass(frozen=True)
class Fact:
    name: str
    type: FactType
    description: str

    @property
    def type_label(self) -> str:
        return TYPE_LABELS[self.type.name if self.type.name != "NULLABLE" else
                           "NULLABLE_" + self.type.inner_type.name]


TYPE_LABELS = {
    "FLOAT": "number",
    "STRING": "text",
    "BOOLEAN": "true/false",
    "NULLABLE_FLOAT": "number or null",
    "NULLABLE_STRING": "text or null",
}


def _catalogue(*facts: Fact) -> dict[str, Fact]:
    return {fact.name: fact for fact in facts}


INTERACTION_FACTS = _catalogue(
    Fact("in_partnership", FLAG, "The interaction belongs to a partnership."),
    Fact("format", TEXT, "The interaction's format (advisory_board, focus_group, …)."),
    Fact("purpose_word_count", NUMBER, "Number of words in the stated purpose (0 when empty)."),
    Fact("purpose_shared", FLAG, "A date is recorded on which the purpose went to participants."),
    Fact("days_purpose_shared_before", MAYBE_NUMBER,
         "Days between sharing the purpose and the interaction (negative: shared afterwards; "
         "null: not shared)."),
    Fact("product_specific", FLAG, "The discussion centres on a specific product."),
    Fact("lifecycle_stage", MAYBE_TEXT, "The product's lifecycle stage at the interaction."),
    Fact("months_to_approval", MAYBE_NUMBER,
         "Months from the interaction to approval (approved_on, else expected_approval_on); "
         "negative once approved; null when neither date is known."),
    Fact("patient_participants", NUMBER, "Patients taking part."),
    Fact("caregiver_participants", NUMBER, "Caregivers taking part."),
    Fact("sponsor_staff", NUMBER, "Sponsor staff taking part."),
    Fact("participant_ratio", MAYBE_NUMBER,
         "(patients + caregivers) / sponsor staff; null when no sponsor staff took part."),
    Fact("selection_method", MAYBE_TEXT, "How participants were chosen."),
    Fact("stages_in_scope_count", NUMBER,
         "Disease stages the discussion speaks for ('all' counts as early, intermediate, late)."),
    Fact("stages_unrepresented", NUMBER,
         "Disease stages in scope that no participant represents ('all' in scope needs every "
         "stage represented)."),
    Fact("protocol_followed", FLAG, "A standard protocol was followed."),
    Fact("materials_co_created", FLAG, "Forms and discussion guide were developed with patients."),
    Fact("facilitator", MAYBE_TEXT, "Who facilitated (sponsor_staff, patient_group, third_party)."),
    Fact("modality", MAYBE_TEXT, "in_person, phone, video or hybrid."),
    Fact("venue_type", MAYBE_TEXT, "sponsor_site, patient_group_site, neutral_venue, virtual, …"),
    Fact("venue_agreed_by_patients", FLAG, "Patients agreed the venue."),
    Fact("accessibility_reviewed", FLAG, "Access needs were reviewed."),
    Fact("accommodations_count", NUMBER, "Number of access accommodations offered."),
    Fact("has_summary", FLAG, "A summary of the interaction is recorded."),
    Fact("days_to_summary", MAYBE_NUMBER,
         "Days from the interaction to the recorded summary date (null when no dated summary)."),
    Fact("outcomes_shared", FLAG, "A date is recorded on which outcomes went back to "
         "participants."),
    Fact("days_to_outcomes_shared", MAYBE_NUMBER,
         "Days from the interaction until outcomes went back to participants (null: not yet)."),
    Fact("days_since_occurred", NUMBER,
         "Days from the interaction to the evaluation date (negative for planned interactions)."),
)

PARTNERSHIP_FACTS = _catalogue(
    Fact("partnership_status", TEXT, "proposed, active or closed."),
    Fact("partnership_kind", TEXT,
         "experiential, content_engagement, research_investment, advocacy or other."),
    Fact("months_active", MAYBE_NUMBER,
         "Months since the partnership started (null when no start date is recorded)."),
    Fact("interactions_last_12_months", NUMBER,
         "Interactions of the partnership in the 12 months up to the evaluation date."),
    Fact("support_count", NUMBER, "Support lines recorded for the partnership."),
    Fact("agreement_signed", FLAG, "A written agreement has a signature date."),
    Fact("ip_terms_agreed", FLAG, "Intellectual-property terms are agreed."),
    Fact("sponsor_share_of_group_support_pct", NUMBER,
         "Highest share (%), in the current or the last calendar year, of the patient group's "
         "industry support that came from this partnership's sponsor: of the industry support "
         "the group declared for that year where it did, else of the support recorded here "
         "(0 without valued support)."),
    Fact("support_share_year", MAYBE_NUMBER, "The calendar year of that highest share."),
    Fact("support_share_of_recorded", FLAG,
         "That share is of the support recorded here (the group declared no industry-support "
         "figure for the year), not of a figure the group declared."),
    Fact("sponsor_share_of_group_income_pct", MAYBE_NUMBER,
         "Highest share (%), in the current or the last calendar year, of the patient group's "
         "income that came from this sponsor: of the income it declared for the year, else of "
         "its annual income (null when neither is recorded)."),
    Fact("income_share_year", MAYBE_NUMBER, "The calendar year of that highest income share."),
    Fact("group_support_cap_pct", MAYBE_NUMBER,
         "The patient group's own cap (%) on one company's share of its industry support (its "
         "industry policy; null when it set none)."),
    Fact("group_income_cap_pct", MAYBE_NUMBER,
         "The patient group's own cap (%) on one company's share of its income (null when it "
         "set none)."),
    Fact("concentration_text", TEXT,
         "The sponsor's shares of the group's industry support and income, with the amounts, "
         "the years and where the group's figures come from, as a sentence."),
    Fact("own_caps_text", TEXT,
         "The group's own caps as the end of a sentence (\"; this group's own industry policy "
         "sets … instead\"), or nothing when it set none."),
    # Closing a partnership (seed 004: review and evaluate at the end, apply the learnings).
    Fact("days_since_ended", MAYBE_NUMBER,
         "Days from the partnership's end date to the evaluation date (null when no end date "
         "is recorded)."),
    Fact("ended_on_text", TEXT, "The end date, or 'no end date recorded'."),
    Fact("has_evaluation", FLAG, "An evaluation (the lessons learned) is written."),
    # Engagement across the lifecycle (seeds 000 and 004).
    Fact("months_since_last_interaction", MAYBE_NUMBER,
         "Months from the partnership's latest interaction (held or planned, not cancelled, on "
         "or before the evaluation date) to the evaluation date; null without one."),
    Fact("months_since_early_interaction", MAYBE_NUMBER,
         "Months from its latest such interaction that is not in phase 3 or later (an earlier "
         "stage, or no stage recorded) to the evaluation date; null without one."),
    Fact("early_interaction_text", TEXT,
         "When that interaction took place, as the end of a sentence."),
)

# Individual payments (governance/payments): a fee and expenses paid to a member of the public.
INDIVIDUAL_PAYMENT_FACTS = _catalogue(
    Fact("service", TEXT, "What the fee paid for (advisory_board, consultancy, speaking, review, "
         "research_participation_fee, other)."),
    Fact("payee_kind", TEXT, "patient, caregiver or other_member_of_public."),
    Fact("has_agreement", FLAG, "The payment names the written agreement it is made under."),
    Fact("has_interaction", FLAG, "The payment names the interaction it paid for."),
    Fact("fee", NUMBER, "The fee paid."),
    Fact("expenses", NUMBER, "The expenses paid."),
    Fact("currency", TEXT, "The currency of the fee and expenses (ISO 4217)."),
    Fact("has_rate", FLAG, "The rate card has a rate for the service in this currency on the "
         "day it was paid."),
    Fact("fair_value", MAYBE_NUMBER, "The most the rate card allows for this payment (hourly "
         "rate × hours, or day rate × days started); null when the card has no rate."),
    Fact("fee_above_fair_value_pct", MAYBE_NUMBER, "How far (%) the fee is above what the rate "
         "card allows (negative: below it; null when the card has no rate)."),
    Fact("fee_text", TEXT, "The fee with its currency, as a person reads it (GBP 1,200.00)."),
    Fact("fair_value_text", MAYBE_TEXT, "What the rate card allows and how (GBP 150.00 per "
         "hour × 4 hours = GBP 600.00); null when the card has no rate."),
)

# --- agreements (AGR-*) --------------------------------------------------------------------

# Support lines under a partnership that name no agreement (AGR-MISSING, a partnership rule).
PARTNERSHIP_FACTS |= _catalogue(
    Fact("lines_without_agreement", NUMBER,
         "Live support lines of the partnership that name no written agreement."),
    Fact("lines_without_agreement_list", TEXT,
         "Those lines, named by id, date and amount (for the flag's message)."),
)

AGREEMENT_FACTS = _catalogue(
    Fact("agreement_kind", TEXT,
         "grant, donation, sponsorship, contracted_service, in_kind or framework."),
    Fact("signed", FLAG, "The agreement has a signature date."),
    Fact("signed_on_text", TEXT, "The signature date, or 'not signed'."),
    Fact("certified", FLAG, "The sponsor's nominated signatory has certified the agreement."),
    Fact("lines", NUMBER, "Live support lines paid under the agreement."),
    Fact("lines_paid_before_signed", NUMBER,
         "Lines paid before the agreement was signed (every line, while it is not signed)."),
    Fact("lines_paid_before_signed_list", TEXT, "Those lines, by id, date and amount."),
    Fact("lines_outside_term", NUMBER,
         "Lines paid before the agreement's starts_on or after its ends_on."),
    Fact("lines_outside_term_list", TEXT, "Those lines, by id, date and amount."),
    Fact("term_text", TEXT, "The agreement's term as the message shows it."),
    Fact("amount", MAYBE_NUMBER, "The ceiling of the agreement (null when none is set)."),
    Fact("currency", MAYBE_TEXT, "The currency of the ceiling."),
    Fact("paid_in_currency", NUMBER,
         "The sum of the valued lines paid under it in the agreement's currency."),
    Fact("amount_exceeded_by", MAYBE_NUMBER,
         "How much those lines pass the ceiling by (null without a ceiling; 0 or less within "
         "it)."),
    Fact("lines_over_amount_list", TEXT,
         "The lines, in order of payment, from the one that passed the ceiling on."),
)

FACTS = {"interaction": INTERACTION_FACTS, "partnership": PARTNERSHIP_FACTS,
         "individual_payment": INDIVIDUAL_PAYMENT_FACTS, "agreement": AGREEMENT_FACTS}
# Approval before the event (issue #18): whether the interaction took place, and whether a plan
# that needed a compliance officer's approval had it before its date.
INTERACTION_FACTS.update(_catalogue(
    Fact("status", TEXT, "planned, held or cancelled."),
    Fact("is_held", FLAG, "The interaction took place (rules that need the event, such as "
         "documentation deadlines, wait for it)."),
    Fact("has_individual_payments", FLAG,
         "Fees or expenses were paid to individual patients or carers for this interaction."),
    Fact("needs_approval", FLAG,
         "Its format is one the policy's [approval] formats name, or it has individual "
         "payments: a compliance officer approves it before it is held."),
    Fact("approved_before_event", FLAG,
         "A compliance officer approved the plan on or before the interaction's date."),
))



# --- interaction facts -----------------------------------------------------------------------


def _days(later: date | None, earlier: date | None) -> int | None:
    if later is None or earlier is None:
        return None
    return (later - earlier).days


def _stages(values) -> set[str]:
    stages = set(values or ())
    if "all" in stages:
        stages = (stages - {"all"}) | DISEASE_STAGES_COVERED_BY_ALL
    return stages


def interaction_facts(record, today: date, approval_formats: frozenset[str] = frozenset()
                      ) -> dict:
    """Return the facts of one interaction (an ORM object or a row with the same attributes);
    `approval_formats`: the formats the policy says need approval before they are held."""
    occurred = record.occurred_on
    purpose = record.purpose
    approval = record.approved_on or record.expected_approval_on
    patients = record.patient_participants or 0
    caregivers = record.caregiver_participants or 0
    staff = record.sponsor_staff or 0
    in_scope = _stages(record.stages_in_scope)
    represented = _stages(record.stages_represented)
    summary_on = record.summary_recorded_on
    shared_on = record.purpose_shared_on
    months = _days(approval, occurred)
    return {
        "in_partnership": record.partnership_id is not None,
        "format": record.format,
        "purpose_word_count": len(purpose.split()) if purpose else 0,
        "purpose_shared": shared_on is not None,
        "days_purpose_shared_before": _days(occurred, shared_on),
        "product_specific": bool(record.product_specific),
        "lifecycle_stage": record.lifecycle_stage,
        "months_to_approval": None if months is None else months / DAYS_PER_MONTH,
        "patient_participants": patients,
        "caregiver_participants": caregivers,
        "sponsor_staff": staff,
        "participant_ratio": (patients + caregivers) / staff if staff else None,
        "selection_method": record.selection_method,
        "stages_in_scope_count": len(in_scope),
        "stages_unrepresented": len(in_scope - represented),
        "protocol_followed": bool(record.protocol_followed),
        "materials_co_created": bool(record.materials_co_created),
        "facilitator": record.facilitator,
        "modality": record.modality,
        "venue_type": record.venue_type,
        "venue_agreed_by_patients": bool(record.venue_agreed_by_patients),
        "accessibility_reviewed": bool(record.accessibility_reviewed),
        "accommodations_count": len(record.accommodations or ()),
        "has_summary": bool(record.summary and record.summary.strip()),
        "days_to_summary": _days(summary_on, occurred),
        "outcomes_shared": record.outcomes_shared_on is not None,
        "days_to_outcomes_shared": _days(record.outcomes_shared_on, occurred),
        "days_since_occurred": (today - occurred).days,
    } | plan_facts(record, approval_formats)


#: The interaction columns interaction_facts reads (the bulk path selects only these).
INTERACTION_COLUMNS = (
    "partnership_id", "format", "occurred_on", "purpose", "purpose_shared_on", "product_specific",
    "lifecycle_stage", "approved_on", "expected_approval_on", "patient_participants",
    "caregiver_participants", "sponsor_staff", "selection_method", "stages_in_scope",
    "stages_represented", "protocol_followed", "materials_co_created", "facilitator", "modality",
    "venue_type", "venue_agreed_by_patients", "accessibility_reviewed", "accommodations",
    "summary", "summary_recorded_on", "outcomes_shared_on",
)



# --- approval before the event (issue #18) ---------------------------------------------------


def has_individual_payments(record) -> bool:
    """Whether fees or expenses were paid to individuals for the interaction: the record's
    `has_individual_payments` attribute (a column property of Interaction, or a column of the
    bulk path's rows, named so); False where the record does not carry it."""
    return bool(getattr(record, "has_individual_payments", False))


def plan_facts(record, approval_formats: frozenset[str]) -> dict:
    """Return the facts of a plan: its status, and whether it needed and had an approval."""
    status = getattr(record, "status", None) or "held"
    paid = has_individual_payments(record)
    approved_at = record.approved_at
    return {
        "status": status,
        "is_held": status == "held",
        "has_individual_payments": paid,
        "needs_approval": paid or record.format in approval_formats,
        "approved_before_event": record.approval_decision == "approved"
        and approved_at is not None and approved_at.date() <= record.occurred_on,
    }


#: What plan_facts reads, beyond the columns above (the bulk path selects these too).
INTERACTION_COLUMNS += ("status", "approval_decision", "approved_at", "has_individual_payments")


# --- partnership facts -----------------------------------------------------------------------


@dataclass(frozen=True)
class GroupSupport:
    """One valued support line received by a patient group, attributed to a sponsor."""

    sponsor_id: int
    year: int
    currency: str
    amount: Decimal


@dataclass(frozen=True)
class DeclaredFigures:
    """What a patient group declared for one calendar year (organisations.GroupYearlyFigures)."""

    year: int
    currency: str
    industry_support: Decimal | None
    income: Decimal | None
    source: str


@dataclass(frozen=True)
class GroupFunding:
    """What a patient group's funding shares are measured against: the support recorded for
    it, its declared yearly figures, its annual income (for years it declared none) and its own
    caps."""

    lines: tuple[GroupSupport, ...] = ()
    declared: dict = field(default_factory=dict)  # year -> DeclaredFigures
    annual_income: Decimal | None = None
    income_currency: str | None = None
    support_cap_pct: Decimal | None = None
    income_cap_pct: Decimal | None = None


@dataclass(frozen=True)
class Share:
    """A sponsor's share of one of a group's yearly figures."""

    pct: float
    year: int
    currency: str | None
    given: Decimal
    total: Decimal
    basis: str  # "declared", "recorded" (support) or "annual" (income)
    source: str | None = None
    figure: Decimal | None = None  # the group's own figure, where the support recorded passes it

    @property
    def amounts(self) -> str:
        given = f"{_money(self.currency, self.given)} of {_money(self.currency, self.total)}"
        if self.figure is None:
            return given
        return (f"{given}: the support recorded for the group that year passes its figure of "
                f"{_money(self.currency, self.figure)}")


@dataclass(frozen=True)
class Concentration:
    support: Share | None = None
    income: Share | None = None
    years: tuple[int, int] = (0, 0)
    support_cap_pct: Decimal | None = None
    income_cap_pct: Decimal | None = None

    @property
    def text(self) -> str:
        return concentration_text(self)

    @property
    def own_caps_text(self) -> str:
        caps = [f"{_pct(self.support_cap_pct)} % of its industry support"
                if self.support_cap_pct is not None else None,
                f"{_pct(self.income_cap_pct)} % of its income"
                if self.income_cap_pct is not None else None]
        caps = [cap for cap in caps if cap]
        if not caps:
            return ""
        return f"; this group's own industry policy sets {' and '.join(caps)} instead"


def concentration(sponsor_id: int, funding: GroupFunding, today: date) -> Concentration:
    """Return the sponsor's highest share of the group's industry support and of its income in
    the current or the last calendar year (older years do not count).

    Shares are computed within one currency (amounts in different currencies are never added).
    A year's industry support is the figure the group declared where it did (never less than
    the support recorded for it in that currency), else the support recorded here; its income
    is the declared figure, else the group's annual income.
    """
    years = (today.year - 1, today.year)
    mine: dict[tuple[int, str], Decimal] = defaultdict(Decimal)
    totals: dict[tuple[int, str], Decimal] = defaultdict(Decimal)
    for line in funding.lines:
        if line.year in years:
            totals[line.year, line.currency] += line.amount
            if line.sponsor_id == sponsor_id:
                mine[line.year, line.currency] += line.amount
    support = income = None
    for year in years:
        support = _larger(support, _support_share(year, funding, mine, totals))
        income = _larger(income, _income_share(year, funding, mine, totals))
    return Concentration(support, income, years, funding.support_cap_pct,
                         funding.income_cap_pct)


def _larger(best: Share | None, candidate: Share | None) -> Share | None:
    """The larger share; on a tie, the later year's (the candidates come in year order)."""
    if candidate is None or (best is not None and best.pct > candidate.pct):
        return best
    return candidate


def _share(given: Decimal, total: Decimal) -> float:
    return float(given / total * 100) if total > 0 else 0.0


def _support_share(year: int, funding: GroupFunding, mine, totals) -> Share | None:
    declared = funding.declared.get(year)
    if declared is not None and declared.industry_support is not None:
        currency = declared.currency
        given = mine.get((year, currency), Decimal(0))
        return _of_figure(given, declared.industry_support, totals.get((year, currency),
                                                                        Decimal(0)),
                          year, currency, "declared", declared.source)
    best = None
    for (line_year, currency), total in sorted(totals.items()):
        if line_year == year and total > 0:
            given = mine.get((year, currency), Decimal(0))
            best = _larger(best, Share(_share(given, total), year, currency, given, total,
                                       "recorded"))
    return best


def _income_share(year: int, funding: GroupFunding, mine, totals) -> Share | None:
    declared = funding.declared.get(year)
    if declared is not None and declared.income is not None:
        income, currency, basis, source = (declared.income, declared.currency, "declared",
                                           declared.source)
    elif funding.annual_income is not None and funding.annual_income > 0:
        income, currency, basis, source = (funding.annual_income, funding.income_currency,
                                           "annual", None)
    else:
        return None
    if currency is None:  # an income recorded without a currency counts support in any
        given = sum((v for (y, _c), v in mine.items() if y == year), Decimal(0))
        recorded = sum((v for (y, _c), v in totals.items() if y == year), Decimal(0))
    else:
        given = mine.get((year, currency), Decimal(0))
        recorded = totals.get((year, currency), Decimal(0))
    return _of_figure(given, income, recorded, year, currency, basis, source)


def _of_figure(given: Decimal, figure: Decimal, recorded: Decimal, year: int,
               currency: str | None, basis: str, source: str | None) -> Share:
    """The share of a group's own figure, which holds at least the support recorded for it."""
    total = max(figure, recorded)
    return Share(_share(given, total), year, currency, given, total, basis, source,
                 figure if recorded > figure else None)


def _pct(value) -> str:
    text = f"{float(value):.1f}"
    return text[:-2] if text.endswith(".0") else text


def _money(currency: str | None, amount: Decimal) -> str:
    return f"{currency} {amount:,.2f}" if currency else f"{amount:,.2f}"


def _support_sentence(share: Share | None, years: tuple[int, int]) -> str:
    if share is None or share.given == 0:
        return (f"No valued industry support from this sponsor to the group is recorded for "
                f"{years[0]} or {years[1]}")
    amounts = share.amounts
    if share.basis == "declared":
        return (f"In {share.year} the sponsor gave {_pct(share.pct)} % of the industry support "
                f"the group declared ({amounts}; source: {share.source})")
    return (f"In {share.year} the sponsor gave {_pct(share.pct)} % of the industry support "
            f"recorded here for the group ({amounts}); the group declared no industry-support "
            f"figure for {share.year}, so only the support recorded in this system is counted")


def _income_sentence(share: Share | None, years: tuple[int, int]) -> str:
    if share is None:
        return f"The group's income for {years[0]} and {years[1]} is not recorded"
    amounts = share.amounts
    if share.basis == "declared":
        return (f"In {share.year} it gave {_pct(share.pct)} % of the income the group "
                f"declared ({amounts}; source: {share.source})")
    return f"In {share.year} it gave {_pct(share.pct)} % of the group's annual income ({amounts})"


def concentration_text(shares: Concentration) -> str:
    """The sponsor's shares of the group's support and income, as two sentences."""
    if shares.years == (0, 0):
        return "The group's funding was not read."
    return (f"{_support_sentence(shares.support, shares.years)}. "
            f"{_income_sentence(shares.income, shares.years)}.")


def partnership_facts(record, *, today: date, interactions_last_12_months: int,
                      support_count: int, shares: Concentration,
                      lines_without_agreement: tuple = (),
                      last_interaction_on: date | None = None,
                      last_early_interaction_on: date | None = None) -> dict:
    """Return the facts of one partnership from its row and the aggregates computed for it."""
    started = record.started_on
    months = _days(today, started)
    support, income = shares.support, shares.income
    ended_on = record.ended_on
    return {
        "partnership_status": record.status,
        "partnership_kind": record.kind,
        "months_active": None if months is None else months / DAYS_PER_MONTH,
        "interactions_last_12_months": interactions_last_12_months,
        "support_count": support_count,
        "agreement_signed": record.agreement_signed_on is not None,
        "ip_terms_agreed": bool(record.ip_terms_agreed),
        "sponsor_share_of_group_support_pct": support.pct if support else 0.0,
        "support_share_year": support.year if support and support.pct > 0 else None,
        "support_share_of_recorded": bool(support and support.basis == "recorded"),
        "sponsor_share_of_group_income_pct": income.pct if income else None,
        "income_share_year": income.year if income else None,
        "group_support_cap_pct": _maybe_float(shares.support_cap_pct),
        "group_income_cap_pct": _maybe_float(shares.income_cap_pct),
        "concentration_text": shares.text,
        "own_caps_text": shares.own_caps_text,
        "lines_without_agreement": len(lines_without_agreement),
        "lines_without_agreement_list": name_lines(lines_without_agreement),
        "days_since_ended": _days(today, ended_on),
        "ended_on_text": ended_on.isoformat() if ended_on else "no end date recorded",
        "has_evaluation": bool(record.evaluation and record.evaluation.strip()),
    } | lifecycle_facts(today, last_interaction_on, last_early_interaction_on)


def _maybe_float(value) -> float | None:
    return None if value is None else float(value)


def lifecycle_facts(today: date, last_on: date | None, last_early_on: date | None) -> dict:
    """How long ago the partnership last met, and last met before phase 3."""
    since_last, since_early = _days(today, last_on), _days(today, last_early_on)
    if last_early_on is None:
        early_text = "no interaction before phase 3 is recorded"
    else:
        early_text = (f"the last one before phase 3 (or without a stage recorded) was on "
                      f"{last_early_on.isoformat()}, {_pct(since_early / DAYS_PER_MONTH)} "
                      "months ago")
    return {
        "months_since_last_interaction": None if since_last is None
        else since_last / DAYS_PER_MONTH,
        "months_since_early_interaction": None if since_early is None
        else since_early / DAYS_PER_MONTH,
        "early_interaction_text": early_text,
    }


PARTNERSHIP_COLUMNS = ("status", "kind", "started_on", "ended_on", "agreement_signed_on",
                       "ip_terms_agreed", "evaluation", "sponsor_id", "patient_group_id")
#: The lifecycle stages from phase 3 on: a partnership that meets only in them engages late.
LATE_STAGES = ("phase_3", "regulatory_review", "post_approval")


# --- individual payment facts ----------------------------------------------------------------


def individual_payment_facts(record, fair) -> dict:
    """Return the facts of one individual payment; `fair` is what the rate card allows for it
    (payments.ratecard.FairValue, or None when the card has no rate)."""
    fee = record.fee or Decimal("0")
    return {
        "service": record.service,
        "payee_kind": record.payee_kind,
        "has_agreement": record.agreement_id is not None,
        "has_interaction": record.interaction_id is not None,
        "fee": float(fee),
        "expenses": float(record.expenses or 0),
        "currency": record.currency,
        "has_rate": fair is not None,
        "fair_value": None if fair is None else float(fair.limit),
        "fee_above_fair_value_pct": None if fair is None else fair.excess_pct(fee),
        "fee_text": f"{record.currency} {fee:,.2f}",
        "fair_value_text": None if fair is None else
        f"{fair.basis} = {record.currency} {fair.limit:,.2f}",
    }
@dataclass(frozen=True)
class PaidLine:
    """One live support line as the agreement rules read it."""

    id: int
    paid_on: date
    currency: str
    amount: Decimal | None

    def __str__(self) -> str:
        value = "unvalued" if self.amount is None else f"{self.currency} {self.amount:,.2f}"
        return f"line {self.id} ({self.paid_on.isoformat()}, {value})"


LINES_NAMED = 10  # lines a message names before it says how many more


def name_lines(lines) -> str:
    """Name the lines a flag is about, by id, date and amount (the first few of many)."""
    lines = list(lines)
    named = ", ".join(str(line) for line in lines[:LINES_NAMED])
    if len(lines) > LINES_NAMED:
        named += f" and {len(lines) - LINES_NAMED} more"
    return named or "none"


def agreement_facts(record, lines: list[PaidLine]) -> dict:
    """Return the facts of one agreement (an ORM object or a row) from its live lines."""
    lines = sorted(lines, key=lambda line: (line.paid_on, line.id))
    signed_on, starts, ends = record.signed_on, record.starts_on, record.ends_on
    before_signed = [line for line in lines if signed_on is None or line.paid_on < signed_on]
    outside = [line for line in lines if (starts is not None and line.paid_on < starts)
               or (ends is not None and line.paid_on > ends)]
    ceiling, currency = record.amount, record.currency
    paid, over = Decimal(0), []
    for line in lines:
        if line.amount is None or line.currency != currency:
            continue
        paid += line.amount
        if ceiling is not None and paid > ceiling:
            over.append(line)
    term = f"{starts.isoformat() if starts else 'open start'} to " \
           f"{ends.isoformat() if ends else 'open end'}"
    return {
        "agreement_kind": record.kind,
        "signed": signed_on is not None,
        "signed_on_text": signed_on.isoformat() if signed_on else "not signed",
        "certified": record.certified_at is not None,
        "lines": len(lines),
        "lines_paid_before_signed": len(before_signed),
        "lines_paid_before_signed_list": name_lines(before_signed),
        "lines_outside_term": len(outside),
        "lines_outside_term_list": name_lines(outside),
        "term_text": term,
        "amount": ceiling,
        "currency": currency,
        "paid_in_currency": paid,
        "amount_exceeded_by": None if ceiling is None else paid - ceiling,
        "lines_over_amount_list": name_lines(over),
    }


#: The agreement columns agreement_facts reads.
AGREEMENT_COLUMNS = ("kind", "signed_on", "starts_on", "ends_on", "amount", "currency",
                     "certified_at", "partnership_id")
