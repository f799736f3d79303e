"""A realistic demo data set: sponsors, patient groups, partnerships of each kind, interactions
mixing good and poor practice and support entries from 1 January two years ago to today (so the
last calendar year is complete and publishable), one user per role, and last year's published
reports (publish_demo_reports)."""

import random
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import select

from .audit import acting_as
from .auth.services import create_user
from .extensions import db
from .organisations.models import GroupYearlyFigures, Organisation
from .partnerships.models import Partnership, Support
from .reports.services import DEFAULT_METHODOLOGY

DEMO_PASSWORD = "demo-password-2026"
INTERACTIONS = 90
# The organisations whose methodology note is written, so that their reports can be generated.
METHODOLOGY_WRITTEN = {"Helix Pharma", "Northwind Therapeutics", "Rare Lung Alliance"}
# Last year's reports, published in the demo: (organisation, its compliance officer).
PUBLISHED_REPORTS = (("Helix Pharma", "compliance"), ("Rare Lung Alliance", "group_compliance"))

ORGANISATIONS = [
    ("Helix Pharma", "sponsor", "GB", [], None),
    ("Northwind Therapeutics", "sponsor", "US", [], None),
    ("Aurora Biologics", "sponsor", "DE", [], None),
    ("Rare Lung Alliance", "patient_group", "GB", ["pulmonary fibrosis"], Decimal("420000")),
    ("Cystic Fibrosis Families", "patient_group", "GB", ["cystic fibrosis"], Decimal("1250000")),
    ("Parkinson's Voices", "patient_group", "IE", ["Parkinson's disease"], Decimal("310000")),
    ("Sickle Cell Collective", "patient_group", "US", ["sickle cell disease"], None),
    ("Bridgewater Facilitation", "other", "GB", [], None),
]

PARTNERSHIPS = [
    # title, sponsor, patient group, kind, status, agreement, ip terms
    ("Trial design advisory programme", "Helix Pharma", "Rare Lung Alliance", "experiential",
     "active", True, False),
    ("Natural-history registry", "Helix Pharma", "Cystic Fibrosis Families",
     "research_investment", "active", True, True),
    ("Patient-preference study", "Northwind Therapeutics", "Parkinson's Voices",
     "research_investment", "active", True, False),
    ("Education content co-creation", "Northwind Therapeutics", "Rare Lung Alliance",
     "content_engagement", "active", False, False),
    ("Access and reimbursement advocacy", "Aurora Biologics", "Sickle Cell Collective",
     "advocacy", "active", True, False),
    ("Lay summaries pilot", "Aurora Biologics", "Parkinson's Voices", "content_engagement",
     "closed", True, False),
    ("Community listening tour", "Helix Pharma", "Sickle Cell Collective", "other",
     "proposed", False, False),
]

TOPICS = [
    "visit schedule and travel burden of the phase 2 protocol",
    "outcome measures that matter to people living with the condition",
    "eligibility criteria that exclude older patients",
    "the informed-consent form in plain language",
    "recruitment materials for under-represented communities",
    "the lay summary of the phase 1 results",
    "priorities for the natural-history registry",
    "retention support for participants in a long trial",
]

# Each defect turns one good practice into poor practice; every rule's example appears.
DEFECTS = {
    "purpose_not_shared": {"purpose_shared_on": None},
    "vague_purpose": {"purpose": "General catch-up"},
    "near_approval": {"product_specific": True, "product": "HLX-101",
                      "lifecycle_stage": "regulatory_review", "purpose": "Product chat"},
    "low_parity": {"patient_participants": 2, "caregiver_participants": 0, "sponsor_staff": 7},
    "unrepresentative": {"stages_represented": ["early"], "stages_in_scope": ["all"]},
    "ad_hoc_selection": {"selection_method": "ad_hoc"},
    "no_patient_input": {"materials_co_created": False},
    "no_protocol": {"protocol_followed": False},
    "sponsor_led_product": {"product_specific": True, "product": "NWT-7",
                            "facilitator": "sponsor_staff"},
    "sponsor_venue": {"venue_type": "sponsor_site", "venue_agreed_by_patients": False},
    "access_not_reviewed": {"modality": "in_person", "accessibility_reviewed": False},
    "no_summary": {"summary": None, "summary_recorded_on": None},
    "no_feedback": {"outcomes_shared_on": None},
}


def _good_interaction(rng: random.Random, occurred: date, topic: str) -> dict:
    return {
        "title": f"{rng.choice(['Advisory board', 'Focus group', 'Workshop', 'Listening session'])}"
                 f" on {topic.split(' of ')[0].split(' that ')[0]}",
        "occurred_on": occurred,
        "format": rng.choice(["advisory_board", "focus_group", "workshop", "listening_session"]),
        "purpose": f"Hear patients' and caregivers' views on {topic} and agree concrete changes",
        "purpose_shared_on": occurred - timedelta(days=rng.randint(7, 21)),
        "product_specific": False,
        "lifecycle_stage": rng.choice(["discovery", "preclinical", "phase_1", "phase_2",
                                       "phase_3", "post_approval"]),
        "patient_participants": rng.randint(5, 10),
        "caregiver_participants": rng.randint(0, 3),
        "sponsor_staff": rng.randint(2, 4),
        "selection_method": rng.choice(["co_created_procedure", "standard_procedure"]),
        "stages_represented": ["early", "intermediate", "late"],
        "stages_in_scope": ["all"],
        "protocol_followed": True,
        "materials_co_created": True,
        "facilitator": rng.choice(["third_party", "patient_group"]),
        "modality": rng.choice(["in_person", "video", "hybrid"]),
        "venue_type": rng.choice(["neutral_venue", "patient_group_site", "virtual"]),
        "venue_agreed_by_patients": True,
        "accessibility_reviewed": True,
        "accommodations": ["step_free_access", "remote_option"],
        "summary": f"Participants discussed {topic}; the actions agreed are in the minutes.",
        "summary_recorded_on": occurred + timedelta(days=rng.randint(1, 14)),
        "outcomes_shared_on": occurred + timedelta(days=rng.randint(20, 60)),
        "patient_needs": rng.sample(["clinical_benefit", "wellness", "practicality",
                                     "commitment_contribution"], 2),
    }


# What changed because of the patients' input on each topic ("you said, we did").
OUTCOME_CHANGES = {
    TOPICS[0]: "Two site visits were replaced by home nursing visits and travel is now booked "
               "and paid in advance.",
    TOPICS[1]: "Fatigue and breathlessness on exertion were added as secondary endpoints.",
    TOPICS[2]: "The upper age limit was removed from the eligibility criteria.",
    TOPICS[3]: "The consent form was rewritten at a reading age of 11, with a one-page summary.",
    TOPICS[4]: "Recruitment leaflets were translated and are handed out by community groups.",
    TOPICS[5]: "The lay summary was reordered to start with what the results mean for patients.",
    TOPICS[6]: "Quality of life at home was added to the registry's core data set.",
    TOPICS[7]: "Participants now get a named contact and a reminder before each visit.",
}


def _engagement_practices(index: int, topic: str) -> dict:
    """Most interactions agreed the roles and offered preparation; some did not, and about half
    recorded what changed because of the patients' input (without drawing on the demo's random
    sequence, so every other value stays as it was)."""
    return {"roles_agreed": index % 6 != 5, "preparation_offered": index % 4 != 3,
            "outcome_changes": OUTCOME_CHANGES[topic] if index % 2 == 0 else None}


def seed_demo(today: date | None = None) -> dict[str, int]:
    """Load the demo set; return how many records of each kind were made."""
    from .interactions.services import log_interaction

    today = today or date.today()
    first = date(today.year - 2, 1, 1)
    rng = random.Random(2026)
    orgs = {}
    for name, kind, country, areas, income in ORGANISATIONS:
        orgs[name] = Organisation(name=name, kind=kind, country=country, disease_areas=areas,
                                  annual_income=income, income_currency="GBP" if income else None,
                                  website=f"https://{name.lower().split()[0]}.example.org",
                                  methodology_note=DEFAULT_METHODOLOGY
                                  if name in METHODOLOGY_WRITTEN else None)
        db.session.add(orgs[name])
    db.session.flush()

    users = _seed_users(orgs)
    partnerships = []
    for title, sponsor, group, kind, status, agreement, ip_terms in PARTNERSHIPS:
        partnership = Partnership(
            title=title, sponsor_id=orgs[sponsor].id, patient_group_id=orgs[group].id, kind=kind,
            status=status, started_on=first - timedelta(days=rng.randint(30, 500)),
            # closed four months ago, its evaluation not yet written (PART-CLOSED-NO-EVALUATION)
            ended_on=today - timedelta(days=120) if status == "closed" else None,
            agreement_signed_on=first - timedelta(days=20) if agreement else None,
            ip_terms_agreed=ip_terms,
            data_sharing_terms="Aggregate findings only; no personal data leaves the group.",
            independence_measures="Several funders; the group sets its own agenda.",
            policy_reference="Co-created engagement SOP v2",
        )
        db.session.add(partnership)
        partnerships.append(partnership)
    partnerships[2].other_organisations.append(orgs["Bridgewater Facilitation"])
    db.session.flush()

    supports = _seed_supports(rng, partnerships, today, first)
    _seed_yearly_figures(orgs, today)
    compliance_of = {user.organisation_id: user for user in users.values()
                     if user.role == "compliance"}
    defects = list(DEFECTS)
    interactions = 0
    with acting_as():
        for index in range(INTERACTIONS):
            occurred = _day_since_start(rng, today, first)
            partnership = _pick_partnership(rng, partnerships, index)
            topic = rng.choice(TOPICS)
            values = _good_interaction(rng, occurred, topic)
            values.update(_engagement_practices(index, topic))
            # Two in three interactions carry one or two poor practices; every defect appears.
            if index < len(defects):
                values.update(DEFECTS[defects[index]])
            elif rng.random() < 0.5:
                for name in rng.sample(defects, rng.randint(1, 2)):
                    values.update(DEFECTS[name])
            if values["summary_recorded_on"] and values["summary_recorded_on"] > today:
                values["summary_recorded_on"] = today
            if values["outcomes_shared_on"] and values["outcomes_shared_on"] > today:
                values["outcomes_shared_on"] = None
            values["partnership_id"] = partnership.id if partnership else None
            values["organisation_id"] = (partnership.sponsor_id if partnership
                                         else orgs["Helix Pharma"].id)
            log_interaction(values, compliance_of[values["organisation_id"]])
            interactions += 1
    _seed_extras(partnerships, users)
    return {"organisations": len(orgs), "partnerships": len(partnerships),
            "support lines": supports, "interactions": interactions, "users": len(users)}


def _pick_partnership(rng, partnerships, index):
    if index % 15 == 7:
        return None  # an ad hoc interaction outside any partnership
    active = [p for p in partnerships if p.status == "active" and
              p.title != "Education content co-creation"]
    if index == 20:
        return next(p for p in partnerships if p.title == "Education content co-creation")
    return rng.choice(active)


# Each demo user belongs to one organisation and sees what it may (README, "Demo users").
DEMO_USERS = {
    # key: (email, name, role, organisation)
    "advocate": ("advocate@demo.example", "Ada Advocate", "advocate", "Helix Pharma"),
    "compliance": ("compliance@demo.example", "Colin Compliance", "compliance", "Helix Pharma"),
    "auditor": ("auditor@demo.example", "Audrey Auditor", "auditor", "Helix Pharma"),
    "partner": ("partner@demo.example", "Priya Partner", "partner", "Rare Lung Alliance"),
    "admin": ("admin@demo.example", "Alex Admin", "admin", None),
    "northwind_advocate": ("northwind-advocate@demo.example", "Nina Northwind", "advocate",
                           "Northwind Therapeutics"),
    "northwind_compliance": ("northwind-compliance@demo.example", "Noah Northwind",
                             "compliance", "Northwind Therapeutics"),
    "aurora_compliance": ("aurora-compliance@demo.example", "Ari Aurora", "compliance",
                          "Aurora Biologics"),
    "external_auditor": ("external-auditor@demo.example", "Eve External", "auditor",
                         "Bridgewater Facilitation"),
    "group_compliance": ("group-compliance@demo.example", "Gwen Group", "compliance",
                         "Rare Lung Alliance"),
}
# The external auditor audits Northwind Therapeutics (a grant, recorded and audited).
EXTERNAL_AUDIT_GRANTS = {"external_auditor": ["Northwind Therapeutics"]}


def _seed_users(orgs) -> dict:
    from .auth.models import AuditorGrant

    users = {key: create_user(email, name, role, DEMO_PASSWORD, organisation)
             for key, (email, name, role, organisation) in DEMO_USERS.items()}
    for key, granted in EXTERNAL_AUDIT_GRANTS.items():
        for name in granted:
            db.session.add(AuditorGrant(user_id=users[key].id, organisation_id=orgs[name].id))
    db.session.flush()
    return users


def _day_since_start(rng, today: date, first: date, margin: int = 5) -> date:
    """A day between the demo's first day and `margin` days before today."""
    return first + timedelta(days=rng.randint(0, (today - first).days - margin))


def _answer(rng, paid_on: date, today: date) -> str:
    """The partner's answer to a line: older lines are answered, mostly confirmed; a recent one
    may still wait."""
    if (today - paid_on).days < 45 and rng.random() < 0.6:
        return "pending"
    return "disputed" if rng.random() < 0.08 else "confirmed"


def _seed_supports(rng, partnerships, today, first) -> int:
    count = 0
    kinds = [("grant", "Grant towards the group's patient helpline"),
             ("sponsorship", "Sponsorship of the annual patient conference"),
             ("contracted_service", "Fees for patient advisers on the advisory board"),
             ("expenses", "Travel expenses of patient representatives"),
             ("donation", "Unrestricted donation to core running costs")]
    for partnership in partnerships:
        if partnership.status == "proposed":
            continue
        last = partnership.ended_on or today
        for _ in range(rng.randint(6, 9)):
            kind, description = rng.choice(kinds)
            paid_on = _day_since_start(rng, last, first)
            db.session.add(Support(
                partnership_id=partnership.id, recipient_id=partnership.patient_group_id,
                paid_on=paid_on, kind=kind, amount=Decimal(rng.randrange(500, 60000, 250)),
                currency="GBP", description=description,
                confirmed_by_partner=_answer(rng, paid_on, today),
            ))
            count += 1
        paid_on = _day_since_start(rng, last, first)
        db.session.add(Support(
            partnership_id=partnership.id, recipient_id=partnership.patient_group_id,
            paid_on=paid_on, kind="in_kind", amount=None, currency="GBP",
            description="Meeting rooms and catering for two workshops",
            confirmed_by_partner=_answer(rng, paid_on, today),
        ))
        count += 1
    db.session.flush()
    return count


# A patient group's own figures of last year, from its published accounts (this year's are not
# published yet: its sponsors' shares this year are of the support recorded here).
DECLARED_FIGURES = {"Rare Lung Alliance": (Decimal("185000.00"), Decimal("410000.00"))}


def _seed_yearly_figures(orgs, today: date) -> None:
    year = today.year - 1
    for name, (industry_support, income) in DECLARED_FIGURES.items():
        db.session.add(GroupYearlyFigures(
            organisation_id=orgs[name].id, year=year, industry_support=industry_support,
            income=income, currency="GBP", source=f"published accounts {year}"))
    db.session.flush()


def _seed_extras(partnerships, users) -> None:
    """Let the other features add their demo records (exercises, flags)."""
    from .activities.services import seed_demo_exercises, seed_demo_own_exercise
    from .rules.bulk import reevaluate_all

    sponsor_side = users["advocate"]
    partner_side = users["partner"]
    seed_demo_exercises(partnerships[0], sponsor_side, partner_side)
    seed_demo_own_exercise(sponsor_side.organisation_id, sponsor_side)
    from .payments.demo import seed_demo_payments

    seed_demo_payments(partnerships[0], sponsor_side, date.today())
    from .agreements.demo import seed_demo_agreements

    seed_demo_agreements(partnerships, users)
    from .review.approvals import seed_demo_approvals

    seed_demo_approvals(partnerships, users)
    reevaluate_all()
    from .rules.demo import seed_demo_policy_proposal

    seed_demo_policy_proposal(users["compliance"], date.today())


def publish_demo_reports(today: date | None = None) -> list:
    """Generate, sign and publish last year's reports of PUBLISHED_REPORTS, as their compliance
    officers would: the draft, each exception acknowledged, the signature, the publication.
    Each job runs here, in this process."""
    from .auth.models import User
    from .reports import exceptions, jobs
    from .reports.models import Report
    from .reports.services import publish_report, request_report

    year = (today or date.today()).year - 1
    published = []
    for name, officer_key in PUBLISHED_REPORTS:
        officer = db.session.scalar(select(User).where(User.email == DEMO_USERS[officer_key][0]))
        organisation = db.session.scalar(select(Organisation).where(Organisation.name == name))
        report = request_report({"organisation_id": organisation.id, "year": year}, officer)
        db.session.commit()
        jobs.run_job(report.id)
        report = db.session.get(Report, report.id, populate_existing=True)
        exceptions.acknowledge_all(report, officer, "Reviewed for the demo: published with "
                                   "these lines as they stand, to be followed up.")
        publish_report(report, officer, DEMO_PASSWORD, "approval")
        db.session.commit()
        jobs.run_job(report.id)
        published.append(db.session.get(Report, report.id, populate_existing=True))
    return published
