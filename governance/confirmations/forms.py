from flask_wtf import FlaskForm
from wtforms import HiddenField, RadioField, TextAreaField
from wtforms.validators import InputRequired, Length, Optional

from ..forms import options
from ..vocabulary import PARTNER_ANSWERS, choices
from .services import NOTE_MAX


class AnswerForm(FlaskForm):
    answer = RadioField("Your answer", choices=options(choices(PARTNER_ANSWERS)),
                        validators=[InputRequired("Choose confirm or dispute.")])
    note = TextAreaField("Note", validators=[Optional(), Length(max=NOTE_MAX)],
                         render_kw={"rows": 3},
                         description="Required when you dispute: say what is wrong.")


class ConfirmSelectedForm(FlaskForm):
    """The partner's list: the lines ticked (request.form "ids") confirmed with one note."""

    kind = HiddenField()
    note = TextAreaField("Note for the selected lines (optional)",
                         validators=[Optional(), Length(max=NOTE_MAX)], render_kw={"rows": 2})
