from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, IntegerField, PasswordField, StringField
from wtforms.validators import DataRequired, Email, EqualTo, Length, NumberRange


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
