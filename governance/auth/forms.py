from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, IntegerField, PasswordField, StringField
from wtforms.validators import DataRequired, Email, EqualTo, Length, NumberRange, Optional


def code_field(description: str = "The 6-digit code your authenticator app shows now.",
               required: bool = True) -> StringField:
    """The second factor's code: the app's, or (where `description` says so) a recovery code."""
    return StringField("Code from your authenticator app",
                       validators=[DataRequired("Enter the code from your authenticator app.")]
                       if required else [Optional()],
                       description=description,
                       render_kw={"autocomplete": "one-time-code", "spellcheck": "false"})


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Email()])
    password = PasswordField("Password", validators=[DataRequired()])
    remember = BooleanField("Keep me signed in on this device")


class PasswordChangeForm(FlaskForm):
    current_password = PasswordField("Current password", validators=[DataRequired()])
    new_password = PasswordField(
        "New password", validators=[DataRequired()],
        description="At least 12 characters. Changing it signs you out everywhere.",
    )


class ChoosePasswordForm(FlaskForm):
    """A password the user chooses themselves (after a temporary one, or from an invitation)."""

    password = PasswordField("New password", validators=[DataRequired()],
                             description="At least 12 characters.")
    password_again = PasswordField("Confirm the password",
                            validators=[DataRequired(),
                                        EqualTo("password", "The two passwords differ.")])


class TokenForm(FlaskForm):
    name = StringField("Token name", validators=[DataRequired(), Length(max=100)],
                       description="What will use it, e.g. 'CRM export script'.")
    expires_in_days = IntegerField("Expires after (days)", default=90,
                                   validators=[DataRequired(), NumberRange(min=1, max=365)],
                                   description="At most 365 days. Changing your password stops "
                                               "every token.")
    code = code_field(required=False)


def signature_code_field() -> StringField:
    """The code beside the password of an e-signature, asked of signers who use two-step
    sign-in (the service refuses a signature without it)."""
    return code_field("The 6-digit code your authenticator app shows now, or a recovery code.",
                      required=False)


class SignInCodeForm(FlaskForm):
    code = code_field("The 6-digit code your authenticator app shows now, or one of your "
                      "recovery codes (each works once).")


class StartTwoStepForm(FlaskForm):
    """A button: a new secret for the authenticator app."""


class ConfirmTwoStepForm(FlaskForm):
    code = code_field()


class PasswordAndCodeForm(FlaskForm):
    """Regenerating the recovery codes or switching two-step sign-in off."""

    password = PasswordField("Your password", validators=[DataRequired()],
                             render_kw={"autocomplete": "current-password"})
    code = code_field("The 6-digit code your authenticator app shows now, or a recovery code.")
