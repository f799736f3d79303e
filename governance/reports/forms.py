from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import BooleanField, PasswordField, RadioField, SelectField, StringField, TextAreaField
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
    country = StringField(
        "Recipients' country", validators=[Optional(), Length(max=2)],
        description="A two-letter ISO code (such as GB) for a national disclosure of the "
                    "recipients of one country; leave empty for all countries.")
    reporting_currency = StringField(
        "Reporting currency", validators=[Optional(), Length(max=3)],
        description="Optional: also give every total in this currency (such as GBP).")
    exchange_rates = TextAreaField(
        "Exchange rates", validators=[Optional(), Length(max=2000)], render_kw={"rows": 3},
        description="One per line, as “USD 0.79”: one US dollar is 0.79 of the reporting "
                    "currency. Needed for every other currency paid in the year; the rates are "
                    "stated in the methodology.")
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


class BrandingForm(FlaskForm):
    logo = FileField("Logo", description="A PNG or JPEG of 1 MB or less, printed on the cover "
                                         "of the public disclosure.")
    remove_logo = BooleanField("Remove the current logo")
    brand_colour = StringField(
        "Colour", validators=[Optional(), Length(max=7)], render_kw={"type": "color"},
        description="Used on the cover band, the headings and the table rules.")


def parsed_rates(text: str | None) -> dict[str, str] | None:
    """The rates typed one per line ("USD 0.79" or "USD = 0.79"), as the service reads them;
    a line it cannot read is refused naming the field."""
    from ..errors import ValidationFailed

    rates: dict[str, str] = {}
    for number, line in enumerate((text or "").splitlines(), start=1):
        parts = line.replace("=", " ").replace(":", " ").split()
        if not parts:
            continue
        if len(parts) != 2:
            raise ValidationFailed({"exchange_rates": [
                f"Line {number} should be a currency code and a rate, such as “USD 0.79”."]})
        rates[parts[0].upper()] = parts[1]
    return rates or None
