"""What benchmark records look like: one interaction's values, good practice with a share of poor.

Shared by the data-set generator (bench/generate.py, Core inserts of typed values) and the
import benchmark (bench/import_bench.py, the same values written as CSV cells). An interaction
meets every good practice of DOMAIN.md unless it is drawn as poor practice; then it gets one or
two of the defects below, each of which breaks one good practice (one or two flags).
"""

import random
from datetime import date, timedelta

FORMATS = ["advisory_board", "focus_group", "listening_session", "interview", "survey",
           "workshop", "conference", "pfdd_meeting"]
FORMAT_WEIGHTS = [18, 22, 12, 14, 14, 12, 5, 3]
STAGES = ["preclinical", "phase_1", "phase_2", "phase_3", "regulatory_review", "post_approval"]
ACTIVITIES = ["RP-01", "RP-03", "TD-01", "TD-03", "TD-04", "TC-01", "TC-03", "RR-02", "DP-01",
              "DP-02"]
PATIENT_NEEDS = ["clinical_benefit", "wellness", "practicality", "commitment_contribution"]
TOPICS = ["the visit schedule and travel burden of the phase 2 protocol",
          "outcome measures that matter to people living with the condition",
          "eligibility criteria that exclude older patients",
          "the informed-consent form in plain language",
          "recruitment materials for under-represented communities",
          "the lay summary of the phase 1 results",
          "priorities for the natural-history registry",
          "retention support for participants in a long trial",
          "home nursing visits instead of site visits",
          "the patient-preference study design"]
SUMMARIES = ["Participants asked for fewer site visits; the team will pilot home nursing.",
             "The group proposed two outcome measures; both go to the steering committee.",
             "Carers asked for travel support; the budget now includes it.",
             "The consent form was rewritten in plain language with the group's advisers."]

# Each defect turns one good practice into poor practice.
DEFECTS = [
    {"purpose_shared_on": None},
    {"purpose": "Catch-up"},
    {"selection_method": "ad_hoc"},
    {"stages_represented": ["early"]},
    {"protocol_followed": False},
    {"materials_co_created": False},
    {"venue_type": "sponsor_site", "venue_agreed_by_patients": False},
    {"accessibility_reviewed": False},
    {"sponsor_staff": 20},
    {"summary": None, "summary_recorded_on": None, "outcomes_shared_on": None},
    {"outcomes_shared_on": None},
    {"partnership_id": None},
    {"product_specific": True, "product": "HLX-101", "facilitator": "sponsor_staff",
     "lifecycle_stage": "regulatory_review"},
]


def interaction_values(rng: random.Random, occurred: date, partnership_id: int | None,
                       organisation_id: int, poor_share: float) -> dict:
    """One interaction's values under their DOMAIN.md names (what the service validates)."""
    form = rng.choices(FORMATS, FORMAT_WEIGHTS)[0]
    topic = rng.choice(TOPICS)
    modality = rng.choice(["in_person", "in_person", "video", "hybrid"])
    values = {
        "title": f"{form.replace('_', ' ').capitalize()} on {topic.split(' of ')[0]}",
        "occurred_on": occurred,
        "format": form,
        "partnership_id": partnership_id,
        "organisation_id": organisation_id,
        "activity_codes": rng.sample(ACTIVITIES, rng.choice((0, 1, 1, 2))),
        "patient_needs": rng.sample(PATIENT_NEEDS, rng.choice((0, 1, 2))),
        "purpose": f"Hear patients' views on {topic} and agree what changes before it is final",
        "purpose_shared_on": occurred - timedelta(days=rng.randint(7, 28)),
        "product_specific": False,
        "product": None,
        "lifecycle_stage": rng.choice(STAGES),
        "expected_approval_on": None,
        "patient_participants": rng.randint(4, 12),
        "caregiver_participants": rng.randint(0, 3),
        "sponsor_staff": rng.randint(1, 4),
        "selection_method": rng.choice(["co_created_procedure", "standard_procedure"]),
        "stages_represented": ["early", "intermediate", "late"],
        "stages_in_scope": ["all"],
        "protocol_followed": True,
        "materials_co_created": True,
        "facilitator": rng.choice(["third_party", "patient_group"]),
        "modality": modality,
        "venue_type": "virtual" if modality == "video" else "neutral_venue",
        "venue_agreed_by_patients": True,
        "accessibility_reviewed": True,
        "accommodations": ["step_free_access", "travel_support"] if modality != "video"
        else ["remote_option"],
        "summary": rng.choice(SUMMARIES),
        "summary_recorded_on": occurred + timedelta(days=rng.randint(2, 20)),
        "outcomes_shared_on": occurred + timedelta(days=rng.randint(20, 80)),
    }
    if rng.random() < poor_share:
        for defect in rng.sample(DEFECTS, rng.randint(1, 2)):
            values.update(defect)
        if values["product_specific"]:
            values["expected_approval_on"] = occurred + timedelta(days=rng.randint(60, 300))
    return values


def csv_cell(value) -> str:
    """A typed value as the CSV import reads it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ";".join(value)
    if isinstance(value, date):
        return value.isoformat()
    return str(value)
