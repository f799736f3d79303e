from flask_wtf import FlaskForm
from wtforms import (
    FieldList,
    Form,
    FormField,
    HiddenField,
    RadioField,
    SelectField,
    SelectMultipleField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Length, Optional

from ..forms import MultiCheckboxField, int_or_none, none_if_blank
from ..vocabulary import BENEFIT_FACTORS, INVESTMENT_FACTORS, RATING_LEVELS
from .services import LEVELS_HIGH_FIRST, LEVELS_LOW_FIRST, quadrant

EXERCISE_NAME_HELP = ("The study or programme it is for, for example “Phase 2 protocol – "
                      "ABC-123”; unique among this side's exercises.")


class SelectionForm(FlaskForm):
    """Step 1: the exercise's name and the activities relevant to it (checkboxes per stage).
    The service checks the name (required, unique), so every door gets the same reasons."""

    name = StringField("Name of the exercise", validators=[Length(max=200)],
                       description=EXERCISE_NAME_HELP)
    activity_codes = SelectMultipleField("Activities", validate_choice=False)
    save = SubmitField("Save draft")
    to_rating = SubmitField("Save and continue to ratings")


class CustomActivityForm(FlaskForm):
    stage = SelectField("Stage", validate_choice=False, coerce=none_if_blank)
    name = StringField("Name", validators=[DataRequired(), Length(max=200)])
    description = TextAreaField("Description", validators=[DataRequired(), Length(max=4000)],
                                description="What the activity involves, in a paragraph.")
    example = TextAreaField("Example", validators=[Optional(), Length(max=2000)],
                            description="A concrete instance, so others rate the same thing.")


class RatingEntryForm(Form):
    activity_code = HiddenField()
    benefit = RadioField("Benefit", choices=dict(RATING_LEVELS), coerce=none_if_blank,
                         validate_choice=False)
    investment = RadioField("Investment", choices=dict(RATING_LEVELS), coerce=none_if_blank,
                            validate_choice=False)
    benefit_factors = MultiCheckboxField("Benefit factors weighed",
                                         choices=dict(BENEFIT_FACTORS), validate_choice=False)
    investment_factors = MultiCheckboxField("Investment factors weighed",
                                            choices=dict(INVESTMENT_FACTORS),
                                            validate_choice=False)
    rationale = TextAreaField("Rationale", validators=[Optional(), Length(max=4000)],
                              description="Why these ratings.")
    implementation_notes = TextAreaField("Implementation notes",
                                         validators=[Optional(), Length(max=4000)],
                                         description="How you would carry the activity out.")

    def values(self) -> dict:
        return {name: self[name].data for name in (
            "activity_code", "benefit", "investment", "benefit_factors", "investment_factors",
            "rationale", "implementation_notes")}


class RatingForm(FlaskForm):
    """Step 2: benefit and investment of every chosen activity."""

    ratings = FieldList(FormField(RatingEntryForm))
    save = SubmitField("Save draft")
    to_matrix = SubmitField("Save and continue to the matrix")


def cell_choices() -> dict[str, str]:
    """The nine cells as value -> label (WTForms' shorthand for choices)."""
    options = {}
    for benefit in LEVELS_HIGH_FIRST:
        for investment in LEVELS_LOW_FIRST:
            named = quadrant(benefit, investment)
            text = f"Benefit {benefit} / investment {investment}"
            options[f"{benefit}:{investment}"] = (
                f"{text} ({named[1].split(':')[0]})" if named else text)
    return options


class MoveForm(FlaskForm):
    """Step 3: place an activity in another cell of the matrix."""

    activity_code = HiddenField(validators=[DataRequired()])
    cell = SelectField("Move to", choices=cell_choices(), validate_choice=False)


class ReasonForm(FlaskForm):
    reason = StringField("Reason", validators=[Optional(), Length(max=500)])


class AttachForm(FlaskForm):
    """Make an organisation's own exercise one of a partnership's."""

    partnership_id = SelectField("Partnership", coerce=int_or_none, validate_choice=False,
                                 description="A partnership your organisation is a party to, "
                                             "on this exercise's side.")


class CompareForm(FlaskForm):
    """Which sponsor exercise to compare with which patient-group exercise (a GET filter)."""

    class Meta:
        csrf = False

    sponsor = SelectField("Sponsor exercise", coerce=int_or_none, validate_choice=False)
    patient_group = SelectField("Patient-group exercise", coerce=int_or_none,
                                validate_choice=False)


class WithdrawForm(FlaskForm):
    reason = StringField("Why withdraw it?", validators=[DataRequired(), Length(max=500)])
