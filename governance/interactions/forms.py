from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    HiddenField,
    IntegerField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Length, Optional

from ..forms import MultiCheckboxField, int_or_none, none_if_blank, vocab_options
from ..vocabulary import (
    ACCOMMODATIONS,
    DIMENSION_GOOD_PRACTICE,
    DIMENSIONS,
    DISEASE_STAGES,
    FACILITATORS,
    INTERACTION_FORMATS,
    INTERACTION_STATUSES,
    LIFECYCLE_STAGES,
    MODALITIES,
    PATIENT_NEEDS,
    SELECTION_METHODS,
    VENUE_TYPES,
)
from ..widgets import RecordSelectField


def _select(label, vocabulary, description=None, blank=True):
    listed = vocab_options(vocabulary, "— not recorded —" if blank else None)
    return SelectField(label, choices=listed,
                       coerce=none_if_blank, validate_choice=False, description=description)


def _date(label, description=None):
    return DateField(label, validators=[Optional()], description=description)


def _count(label, description=None):
    return IntegerField(label, default=0, validators=[Optional()], description=description)


class InteractionForm(FlaskForm):
    title = StringField("Title", validators=[DataRequired(), Length(max=200)])
    occurred_on = DateField("Date", validators=[DataRequired(message="Enter the date it took "
                                                                      "place.")])
    format = _select("Format", INTERACTION_FORMATS, blank=False)
    status = SelectField("Status", choices=vocab_options(INTERACTION_STATUSES), default="held",
                         validate_choice=False,
                         description="Planned: it has not taken place yet (the rules check the "
                         "plan; formats the policy names need approval before they are held).")
    organisation_id = SelectField("Held by", coerce=int_or_none, validate_choice=False,
                                  description="The organisation that held the interaction.")
    activity_codes = SelectMultipleField("Engagement activities served", validate_choice=False,
                                         description="The prioritised activities this "
                                         "interaction worked on (hold Ctrl to pick several).")
    publishable = BooleanField(
        "May be named in the public disclosure",
        description="Leave unticked when its name mentions an unlicensed product or anything not "
                    "for publication: the public report then leaves it out.")
    patient_needs = MultiCheckboxField("Patient needs served", choices=vocab_options(PATIENT_NEEDS),
                                       validate_choice=False)

    partnership_id = SelectField("Partnership", coerce=int_or_none, validate_choice=False,
                                 description="Leave empty only for an interaction outside any "
                                 "partnership (it will be flagged as ad hoc).")

    purpose = TextAreaField("Purpose", description="What the interaction is for, specifically.")
    purpose_shared_on = _date("Purpose shared with participants on",
                              "Leave empty if it was not shared in advance.")
    product_specific = BooleanField("The discussion centres on a specific product")
    product = StringField("Product", validators=[Optional(), Length(max=200)])

    lifecycle_stage = _select("Lifecycle stage", LIFECYCLE_STAGES)
    expected_approval_on = _date("Expected approval date")
    approved_on = _date("Approved on")

    patient_participants = _count("Patients")
    caregiver_participants = _count("Caregivers")
    sponsor_staff = _count("Sponsor staff")
    selection_method = _select("How participants were chosen", SELECTION_METHODS)
    stages_represented = MultiCheckboxField("Disease stages of the participants",
                                            choices=vocab_options(DISEASE_STAGES),
                                            validate_choice=False)
    stages_in_scope = MultiCheckboxField("Disease stages the discussion speaks for",
                                         choices=vocab_options(DISEASE_STAGES),
                                         validate_choice=False)
    preparation_offered = BooleanField(
        "Preparation or training was offered to the patients taking part",
        description="For example a briefing on the trial and on what the meeting will decide, "
                    "or training to review a protocol, so patients can contribute fully.")

    protocol_followed = BooleanField("A standard protocol was followed")
    materials_co_created = BooleanField("Forms and discussion guide were developed with patients")
    facilitator = _select("Facilitated by", FACILITATORS)
    modality = _select("Modality", MODALITIES)
    roles_agreed = BooleanField(
        "Roles and responsibilities were agreed beforehand",
        description="What the patients and the sponsor each do, decide and receive was agreed "
                    "with the patients before the interaction.")

    venue_type = _select("Venue", VENUE_TYPES)
    venue_agreed_by_patients = BooleanField("Patients agreed the venue")
    accessibility_reviewed = BooleanField("Access needs were reviewed beforehand")
    accommodations = MultiCheckboxField("Accommodations offered",
                                        choices=vocab_options(ACCOMMODATIONS),
                                        validate_choice=False)

    summary = TextAreaField("Summary", description="What was discussed and decided.")
    summary_recorded_on = _date("Summary recorded on")
    outcomes_shared_on = _date("Outcomes shared back on",
                               "The date results went back to participants or the community.")
    outcome_changes = TextAreaField("What changed because of the patients' input",
                                    description="“You said, we did”: shared back with the "
                                    "outcomes.")

    reason = StringField("Reason for the change", validators=[Optional(), Length(max=500)],
                         description="Required when the review was already signed off.")
    version = HiddenField()


# The form is laid out by NHC dimension; each group carries the good practice it protects.
GROUPS = [
    ("General", None, ["title", "occurred_on", "format", "status", "organisation_id",
                       "activity_codes", "patient_needs", "publishable"]),
    ("WHAT", DIMENSION_GOOD_PRACTICE["WHAT"], ["partnership_id"]),
    ("WHY", DIMENSION_GOOD_PRACTICE["WHY"], ["purpose", "purpose_shared_on", "product_specific",
                                             "product"]),
    ("WHEN", DIMENSION_GOOD_PRACTICE["WHEN"], ["lifecycle_stage", "expected_approval_on",
                                               "approved_on"]),
    ("WHO", DIMENSION_GOOD_PRACTICE["WHO"], ["patient_participants", "caregiver_participants",
                                             "sponsor_staff", "selection_method",
                                             "stages_represented", "stages_in_scope",
                                             "preparation_offered"]),
    ("HOW", DIMENSION_GOOD_PRACTICE["HOW"], ["protocol_followed", "materials_co_created",
                                             "roles_agreed", "facilitator", "modality"]),
    ("WHERE", DIMENSION_GOOD_PRACTICE["WHERE"], ["venue_type", "venue_agreed_by_patients",
                                                 "accessibility_reviewed", "accommodations"]),
    ("DOC", DIMENSION_GOOD_PRACTICE["DOC"], ["summary", "summary_recorded_on",
                                             "outcomes_shared_on", "outcome_changes"]),
]
GROUP_TITLES = {"General": "General", **DIMENSIONS}


class InteractionFilterForm(FlaskForm):
    class Meta:
        csrf = False

    q = StringField("Search titles and purposes", validators=[Optional()])
    partnership_id = RecordSelectField("Partnership", coerce=int_or_none)
    organisation_id = RecordSelectField("Organisation", coerce=int_or_none)
    format = SelectField("Format", choices=vocab_options(INTERACTION_FORMATS, "Any format"),
                         coerce=none_if_blank, validate_choice=False)
    date_from = DateField("From", validators=[Optional()])
    date_to = DateField("To", validators=[Optional()])

