from flask_wtf import FlaskForm
from wtforms import EmailField, HiddenField, RadioField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Email, InputRequired, Length, Optional

from ..forms import MultiCheckboxField, int_or_none, none_if_blank, options, vocab_options
from ..organisations.forms import organisation_choices
from ..vocabulary import ROLES
from .services import ACCESS_METHODS


class AccountFields(FlaskForm):
    """What an administrator sets on an account: name, role and organisations."""

    name = StringField("Name", validators=[DataRequired(), Length(max=200)])
    role = SelectField("Role", choices=vocab_options(ROLES, "Choose a role"),
                       coerce=none_if_blank, validate_choice=False)
    organisation_id = SelectField(
        "Organisation", coerce=int_or_none, validate_choice=False,
        description="Every role but administrator belongs to an organisation and sees only "
                    "what that organisation is a party to.")
    granted_organisation_ids = MultiCheckboxField(
        "Further organisations this auditor may read", coerce=int, validate_choice=False,
        description="Only for auditors, e.g. an external auditor of one company. Leave all "
                    "unticked for other roles.")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.organisation_id.choices = organisation_choices(
            blank="No organisation (administrators only)")
        self.granted_organisation_ids.choices = organisation_choices()


class NewUserForm(AccountFields):
    email = EmailField("Email", validators=[DataRequired(), Email(), Length(max=254)],
                       description="They log in with it. Two accounts cannot share one.")
    access = RadioField("How they sign in the first time",
                        choices=options(ACCESS_METHODS.items()), default="invitation",
                        validate_choice=False)


class EditUserForm(AccountFields):
    reason = StringField("Reason for the change", validators=[Optional(), Length(max=500)],
                         description="Kept in the audit trail.")
    version = HiddenField()


class DeactivateForm(FlaskForm):
    reason = TextAreaField("Why is this account being deactivated?",
                           validators=[DataRequired(), Length(max=1000)],
                           description="Kept in the audit trail.")


class ReactivateForm(FlaskForm):
    reason = StringField("Reason for reactivating", validators=[Optional(), Length(max=500)],
                         description="Kept in the audit trail.")


class ResetTwoStepForm(FlaskForm):
    reason = StringField("Why is it reset?", validators=[DataRequired(), Length(max=500)],
                         description="E.g. a lost phone. Kept in the audit trail.")


class AccessForm(FlaskForm):
    access = RadioField("How they sign in next", choices=options(ACCESS_METHODS.items()),
                        default="invitation", validate_choice=False,
                        validators=[InputRequired("Choose how they sign in next.")])


ACCOUNT_STATES = {"active": "Active", "deactivated": "Deactivated"}


class UserFilterForm(FlaskForm):
    class Meta:
        csrf = False

    role = SelectField("Role", choices=vocab_options(ROLES, "Any role"), coerce=none_if_blank,
                       validate_choice=False)
    organisation_id = SelectField("Organisation", coerce=int_or_none, validate_choice=False)
    state = SelectField("Status", choices=vocab_options(ACCOUNT_STATES, "Any status"),
                        coerce=none_if_blank, validate_choice=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.organisation_id.choices = organisation_choices(blank="Any organisation")
