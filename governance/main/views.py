from flask import Blueprint, redirect, render_template, url_for
from flask_login import current_user
from sqlalchemy import select

from ..extensions import db
from ..interactions.models import Interaction
from ..security import ALL_ROLES, allow, interaction_scope, public

bp = Blueprint("main", __name__)


@bp.route("/")
@public
def index():
    if current_user.is_authenticated:
        return redirect(url_for("main.home"))
    return redirect(url_for("auth.login"))


@bp.route("/home")
@allow(*ALL_ROLES)
def home():
    recent = db.session.scalars(
        select(Interaction)
        .where(interaction_scope(current_user), Interaction.voided_at.is_(None))
        .order_by(Interaction.occurred_on.desc(), Interaction.id.desc())
        .limit(10)
    ).all() if current_user.role != "admin" else []
    return render_template("main/home.html", recent=recent)
