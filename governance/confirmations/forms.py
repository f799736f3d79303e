from flask_wtf import FlaskForm
from wtforms import RadioField, TextAreaField
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
