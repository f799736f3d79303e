"""The vocabularies of the records (their machine names), shared by models, forms, the API,
imports, rules and reports.

Each vocabulary maps a machine name to the label a person reads.
"""

ROLES = {
    "advocate": "Patient-engagement advocate",
    "compliance": "Compliance officer",
    "auditor": "Auditor",
    "partner": "Partner representative",
    "admin": "Administrator",
}

ORGANISATION_KINDS = {
    "sponsor": "Sponsor",
    "patient_group": "Patient group",
    "other": "Other (academic, facilitator, CRO, regulator)",
}

PARTNERSHIP_KINDS = {
    "experiential": "Experiential",
    "content_engagement": "Content engagement",
    "research_investment": "Research investment",
    "advocacy": "Advocacy",
    "other": "Other",
}

PARTNERSHIP_STATUSES = {"proposed": "Proposed", "active": "Active", "closed": "Closed"}

SUPPORT_KINDS = {
    "grant": "Grant",
    "donation": "Donation",
    "sponsorship": "Sponsorship",
    "in_kind": "In-kind support",
    "contracted_service": "Contracted service",
    "expenses": "Expenses",
}

AGREEMENT_KINDS = {
    "grant": "Grant",
    "donation": "Donation",
    "sponsorship": "Sponsorship",
    "contracted_service": "Contracted service",
    "in_kind": "In-kind support",
    "framework": "Framework agreement",
}

# A partner's answer and the dispute's life (DOMAIN.md, Support): pending -> confirmed, or
# disputed -> corrected (the record changed: pending again) | upheld | withdrawn.
CONFIRMATION_STATES = {
    "pending": "Awaiting partner",
    "confirmed": "Confirmed",
    "disputed": "Disputed",
    "upheld": "Kept after dispute",
    "withdrawn": "Dispute withdrawn",
}
# How a report states a partner's answer: a line still pending after the review window is
# "not answered" (reports/services.py).
REPORTED_ANSWERS = CONFIRMATION_STATES | {"not_answered": "Not answered within the review window"}

INTERACTION_FORMATS = {
    "advisory_board": "Advisory board",
    "focus_group": "Focus group",
    "listening_session": "Listening session",
    "interview": "Interview",
    "survey": "Survey",
    "workshop": "Workshop",
    "conference": "Conference",
    "pfdd_meeting": "Patient-focused drug development meeting",
    "other": "Other",
}

LIFECYCLE_STAGES = {
    "pre_discovery": "Pre-discovery",
    "discovery": "Discovery",
    "preclinical": "Preclinical",
    "phase_1": "Phase 1",
    "phase_2": "Phase 2",
    "phase_3": "Phase 3",
    "regulatory_review": "Regulatory review",
    "post_approval": "Post-approval",
}

SELECTION_METHODS = {
    "co_created_procedure": "Co-created procedure",
    "standard_procedure": "Standard procedure",
    "ad_hoc": "Ad hoc",
}

DISEASE_STAGES = {
    "early": "Early stage",
    "intermediate": "Intermediate stage",
    "late": "Late stage",
    "all": "All stages",
}

FACILITATORS = {
    "sponsor_staff": "Sponsor staff",
    "patient_group": "Patient group",
    "third_party": "Independent third party",
}

MODALITIES = {"in_person": "In person", "phone": "Phone", "video": "Video", "hybrid": "Hybrid"}

VENUE_TYPES = {
    "sponsor_site": "Sponsor site",
    "patient_group_site": "Patient group site",
    "neutral_venue": "Neutral venue",
    "virtual": "Virtual",
    "other": "Other",
}

ACCOMMODATIONS = {
    "step_free_access": "Step-free access",
    "accessible_restrooms": "Accessible restrooms",
    "travel_support": "Travel support",
    "interpretation": "Interpretation",
    "caregiver_support": "Caregiver support",
    "remote_option": "Remote option",
    "other": "Other",
}

PATIENT_NEEDS = {
    "clinical_benefit": "Clinical benefit",
    "wellness": "Wellness",
    "practicality": "Practicality",
    "commitment_contribution": "Commitment and contribution",
}

DIMENSIONS = {
    "WHAT": "WHAT the relationship",
    "WHY": "WHY the purpose",
    "WHEN": "WHEN the timing",
    "WHO": "WHO the participants",
    "HOW": "HOW the structure",
    "WHERE": "WHERE the venue",
    "DOC": "Documentation",
}

DIMENSION_GOOD_PRACTICE = {
    "WHAT": "An observable, open, documented and transparent partnership: win-win, long-term and "
    "continuous rather than ad hoc.",
    "WHY": "A clearly defined purpose, shared with the participants before the interaction.",
    "WHEN": "Engagement across every stage of the product lifecycle, not only close to approval.",
    "WHO": "Appropriate participants from all partners, chosen by co-created standard procedures, "
    "with patient-to-staff parity and representative of the community discussed.",
    "HOW": "Standardised protocols, forms and procedures, co-created with patients and kept up to "
    "date; product questions kept out of focus, ideally with a third-party facilitator.",
    "WHERE": "A neutral venue agreed with patients, chosen by co-created procedure, with access "
    "needs met.",
    "DOC": "Every interaction documented, and its outcomes shared back with participants and the "
    "community.",
}


def choices(vocabulary: dict) -> list[tuple[str, str]]:
    return list(vocabulary.items())


# --- Poor-practice flags and the compliance review --------------------------------------------

SEVERITIES = {"low": "Low", "medium": "Medium", "high": "High"}

FLAG_STATES = {
    "open": "Open",
    "acknowledged": "Acknowledged",
    "remediated": "Remediated",
    "dismissed": "Dismissed",
    # Closed because the policy changed (a rule switched off), not because the record was fixed.
    "superseded": "Superseded",
}

# The meaning of an electronic signature, stated by the signer (21 CFR Part 11 §11.50).
SIGNATURE_MEANINGS = {
    "review": "Reviewed: I have reviewed this interaction against the good-practice policy and "
    "its flags are resolved.",
    "approval": "Approved: I approve this interaction record as complete and compliant.",
    "responsibility": "Responsibility: I take responsibility for the compliance review of this "
    "interaction.",
}


# --- Engagement activities and prioritisation (CTTI method, seed 001) -------------------------

PRIORITISATION_SIDES = {"sponsor": "Sponsor", "patient_group": "Patient group"}

RATING_LEVELS = {"low": "Low", "moderate": "Moderate", "high": "High"}

BENEFIT_FACTORS = {
    "reach": "Reach of the effect (how many patients, how many future studies)",
    "patient_group_necessity": "The patient group is needed to do it",
    "development_necessity": "Necessary to move development forward",
    "short_term_ease": "Easy to accomplish in the short term",
    "reputation": "Reputation (seen as the right thing to do)",
}

INVESTMENT_FACTORS = {
    "money": "Money",
    "staff_time": "Staff time and expertise",
    "organisational_commitment": "Organisational commitment and infrastructure",
    "patient_burden": "Patient involvement and burden",
    "reputational_risk": "Reputational risk",
}

EXERCISE_STATUSES = {"draft": "Draft", "completed": "Completed"}

ATTACHMENT_LABELS = {
    "agenda": "Agenda",
    "minutes": "Minutes",
    "agreement": "Agreement",
    "other": "Other document",
}

# --- Transparency reports ---------------------------------------------------------------------

REPORT_STATUSES = {
    "queued": "Waiting to start",
    "running": "Being prepared",
    "done": "Draft ready for review",
    "failed": "Failed",
    "published": "Published",
}

REPORT_JOBS = {"generate": "Generate the draft", "publish": "Publish the signed report"}

# The meaning of the publisher's electronic signature, printed in the report.
REPORT_SIGNATURE_MEANINGS = {
    "approval": "Approved for publication: I approve this report as a complete and accurate "
    "disclosure of the support given and the interactions held during the year.",
    "responsibility": "Responsibility: I take responsibility for the accuracy of this "
    "disclosure.",
}

# What a partner may answer about a support line or an interaction.
PARTNER_ANSWERS = {"confirmed": "Confirm: this record is right",
                   "disputed": "Dispute: something in this record is wrong"}

# A re-evaluation of every record, run in the background (rules/jobs.py).
JOB_STATES = {
    "queued": "Waiting to start",
    "running": "Running",
    "done": "Done",
    "failed": "Failed",
}
REEVALUATION_STATES = JOB_STATES

# --- policy versions (governance/rules/versions.py) -----------------------------------------

POLICY_ORIGINS = {"file": "Shipped file", "application": "Proposed in the application"}
POLICY_VERSION_STATES = {
    "proposed": "Proposed, awaiting sign-off",
    "in_force": "Put in force",
    "withdrawn": "Withdrawn",
}
# What a patient partner's signature on a policy version means (an e-signature).
POLICY_SIGN_OFF_MEANINGS = {
    "co_created": "I took part in co-creating this policy version and agree to it on behalf "
                  "of my organisation.",
    "reviewed": "I have reviewed this policy version with the people I represent and agree "
                "to it on behalf of my organisation.",
}

# --- individual payments (ABPI clause 30): fees and expenses paid to members of the public ---

PAYEE_KINDS = {
    "patient": "Patient",
    "caregiver": "Caregiver",
    "other_member_of_public": "Other member of the public",
}

PAYMENT_SERVICES = {
    "advisory_board": "Advisory board member",
    "consultancy": "Consultancy",
    "speaking": "Speaking",
    "review": "Review (protocol, materials)",
    "research_participation_fee": "Research participation fee",
    "other": "Other",
}

RATE_UNITS = {"hour": "per hour", "day": "per day"}

# --- Approval before the event (issue #18) ------------------------------------------------------

# An interaction is first planned, then held (or cancelled); one logged after the fact is held.
INTERACTION_STATUSES = {
    "planned": "Planned",
    "held": "Held",
    "cancelled": "Cancelled",
}

# A compliance officer's decision on a plan whose format needs approval before it is held.
APPROVAL_DECISIONS = {
    "approved": "Approved",
    "rejected": "Rejected",
}

# What a notification is about (notifications/): each user chooses, per kind, mail or the inbox
# only (NotificationSettings).
NOTIFICATION_KINDS = {
    "confirmation_requested": "Records for your organisation to confirm",
    "dispute_raised": "A partner disputed a record",
    "dispute_answered": "Your dispute was answered (kept or corrected)",
    "dispute_withdrawn": "A partner withdrew a dispute",
    "flags_raised": "Flags raised on an interaction you logged",
    "documentation_due": "A summary or feedback due soon",
    "plan_submitted": "A plan submitted for approval",
    "plan_decided": "Your plan approved or rejected",
    "report_due": "A transparency report due soon or overdue",
    "policy_review_due": "The policy's review date has passed",
    "policy_sign_off_requested": "A policy version awaits your sign-off",
    "policy_signed_off": "A patient partner signed off a policy version",
}

# --- quality of engagement beyond flags (issue #21; governance/quality/) ----------------------

# PFMD's "roles and responsibilities" and "capacity and capability", as interaction fields.
ENGAGEMENT_PRACTICES = {
    "roles_agreed": "Roles and responsibilities agreed beforehand",
    "preparation_offered": "Preparation or training offered to the patients",
}

# What comparing a sponsor's and a patient group's exercises finds for an activity (CTTI, seed
# 001, "Step three": activities of high value for each; DOMAIN.md "Compare").
COMPARISON_OUTCOMES = {
    "pursue": "Priority to pursue: high benefit for a low investment, for both",
    "worth_if_resourced": "Worth it if resourced: high benefit for a high investment, for both",
    "sponsor_can_offer": "The sponsor can offer it to the patient group",
    "patient_group_can_offer": "The patient group can offer it to the sponsor",
    "to_discuss": "High value to both: agree the investment",
}
