from flask_wtf import FlaskForm
from wtforms import BooleanField, SubmitField

from ..forms import MultiCheckboxField, options
from ..vocabulary import NOTIFICATION_KINDS, choices


class SettingsForm(FlaskForm):
    by_mail = MultiCheckboxField(
        "Send me a mail for", choices=options(choices(NOTIFICATION_KINDS)),
        description="Unticked kinds reach you in the inbox only. Every kind is always in the "
                    "inbox.")
    daily_digest = BooleanField("One daily digest instead of one mail each")
    submit = SubmitField("Save the settings")

