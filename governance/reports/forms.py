from flask_wtf import FlaskForm
from wtforms import PasswordField, RadioField, SelectField, TextAreaField
from wtforms.validators import InputRequired, Length, Optional

from ..auth.forms import signature_code_field
from ..forms import options
from ..vocabulary import REPORT_SIGNATURE_MEANINGS, choices
from .services import METHODOLOGY_MAX


class ReportRequestForm(FlaskForm):
    organisation_id = SelectField("Reporting organisation", coerce=int,
                                  validators=[InputRequired("Choose the organisation.")],
                                  description="The organisation that gave the support "
                                              "(usually the sponsor).")
    year = SelectField("Calendar year", coerce=int,
                       validators=[InputRequired("Choose the year.")])
    reason = TextAreaField(
        "Reason for the correction", validators=[Optional(), Length(max=2000)],
        description="Needed only when a version of this year's report is already published: "
                    "say what the new version corrects and why.")


class PublishForm(FlaskForm):
    meaning = RadioField("Meaning of your signature",
                         choices=options(choices(REPORT_SIGNATURE_MEANINGS)),
                         validators=[InputRequired("State what your signature means.")])
    password = PasswordField(
        "Your password", validators=[InputRequired("Re-enter your password to sign.")],
        description="Re-entering your password makes this your electronic signature. Your name, "
                    "the date and time (UTC) and the meaning are printed in the report.")
    code = signature_code_field()


class MethodologyForm(FlaskForm):
    methodology_note = TextAreaField(
        "Methodology note",
        validators=[InputRequired("Write the methodology note."),
                    Length(max=METHODOLOGY_MAX)],
        render_kw={"rows": 16},
        description="Printed at the start of every report of this organisation. Say which "
                    "currency the amounts are in, how VAT is treated, how the support was "
                    "identified and what counts as in-kind support.")
