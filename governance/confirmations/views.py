"""Pages of partners' answers: the partner's list of records to confirm, the answer form, and
the compliance queue of disputes."""

from flask import Blueprint, Flask, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from ..errors import DomainError
from ..extensions import db
from ..forms import form_status, save_form
from ..permissions import allow, can_answer_disputes, can_confirm_records, can_read_disputes
from ..vocabulary import CONFIRMATION_STATES
from . import services
from .forms import AnswerForm, ConfirmSelectedForm

bp = Blueprint("confirmations", __name__, url_prefix="/reports")


@bp.route("/confirmations")
@allow(can_confirm_records)
def confirmations():
    kind = request.args.get("kind", "support")
    if kind not in services.KINDS:
        kind = "support"
    state = request.args.get("state", "pending")
    if state not in CONFIRMATION_STATES and state != "all":
        state = "pending"
    page_number = max(1, request.args.get("page", 1, type=int) or 1)
    page = services.records_to_answer(current_user, kind, None if state == "all" else state,
                                      page_number)
    form = ConfirmSelectedForm(kind=kind)
    return render_template("confirmations/confirmations.html", page=page, kind=kind,
                           state=state, pending=services.pending_counts(current_user),
                           form=form)


@bp.route("/confirmations/confirm-selected", methods=["POST"])
@allow(can_confirm_records)
def confirm_selected():
    form = ConfirmSelectedForm()
    kind = form.kind.data if form.kind.data in services.KINDS else "support"
    back = url_for(".confirmations", kind=kind)
    if not form.validate_on_submit():
        flash("Nothing was confirmed: " + " ".join(
            message for messages in form.errors.values() for message in messages), "danger")
        return redirect(back, 303)
    raw = request.form.getlist("ids")
    ids = [int(value) for value in raw if value.isdigit()]
    if len(ids) != len(raw):
        flash("Nothing was confirmed: a selected line is not a line of this list.", "danger")
        return redirect(back, 303)
    try:
        confirmed = services.confirm_many(kind, {"ids": ids, "note": form.note.data},
                                          current_user)
    except DomainError as error:
        db.session.rollback()
        flash(refusal_text(error), "danger")
        return redirect(back, 303)
    db.session.commit()
    count = len(confirmed)
    what = ("support line" if kind == "support" else "interaction") + ("s" if count != 1 else "")
    flash(f"Thank you: {count} {what} confirmed.", "success")
    return redirect(back, 303)


def _answer(kind: str, record_id: int):
    if kind == "support":
        record = services.visible_support(current_user, record_id)
    else:
        record = services.visible_interaction(current_user, record_id)
    if record is None:
        abort(404)
    form = AnswerForm()
    if request.method == "GET":
        form.answer.data = record.confirmed_by_partner \
            if record.confirmed_by_partner != "pending" else None
        form.note.data = record.confirmation_note
    if form.validate_on_submit():
        service = services.answer_support if kind == "support" else services.answer_interaction
        saved = save_form(
            form, lambda: service(record, {"answer": form.answer.data, "note": form.note.data},
                                  current_user),
            "Thank you: your answer is recorded." if form.answer.data == "confirmed"
            else "Your dispute is recorded and sent to the sponsor's compliance officer.",
            url_for(".confirmations", kind=kind), code=303)
        if saved is not None:
            return saved
    return render_template("confirmations/answer.html", form=form, kind=kind, record=record), \
        form_status(form)


@bp.route("/confirmations/support/<int:support_id>", methods=["GET", "POST"])
@allow(can_confirm_records)
def confirm_support(support_id: int):
    return _answer("support", support_id)


@bp.route("/confirmations/interaction/<int:interaction_id>", methods=["GET", "POST"])
@allow(can_confirm_records)
def confirm_interaction(interaction_id: int):
    return _answer("interaction", interaction_id)


def refusal_text(error: DomainError) -> str:
    """A refused action's reasons in one sentence for a flash message."""
    return " ".join(message for messages in error.fields.values() for message in messages) \
        if error.fields else error.message


def _end_dispute(kind: str, record_id: int, end, done: str, back: str):
    """Run one end of a dispute (uphold, withdraw) from a button; flash what happened."""
    record = services.visible_support(current_user, record_id) if kind == "support" \
        else services.visible_interaction(current_user, record_id)
    if record is None:
        abort(404)
    try:
        end(record)
    except DomainError as error:
        db.session.rollback()
        flash("Nothing was changed: " + refusal_text(error), "danger")
    else:
        db.session.commit()
        flash(done, "success")
    return redirect(back, 303)


def _uphold(kind: str, record_id: int):
    return _end_dispute(
        kind, record_id,
        lambda record: services.uphold(record, {"reason": request.form.get("reason")},
                                       current_user),
        f"{kind}-{record_id} is kept unchanged; the partner sees your reason.",
        url_for(".disputes"))


def _withdraw(kind: str, record_id: int):
    return _end_dispute(kind, record_id, lambda record: services.withdraw(record, current_user),
                        f"Your dispute of {kind}-{record_id} is withdrawn.",
                        url_for(".confirmations", kind=kind))


@bp.route("/disputes/support/<int:support_id>/uphold", methods=["POST"])
@allow(can_answer_disputes)
def uphold_support(support_id: int):
    return _uphold("support", support_id)


@bp.route("/disputes/interaction/<int:interaction_id>/uphold", methods=["POST"])
@allow(can_answer_disputes)
def uphold_interaction(interaction_id: int):
    return _uphold("interaction", interaction_id)


@bp.route("/confirmations/support/<int:support_id>/withdraw", methods=["POST"])
@allow(can_confirm_records)
def withdraw_support(support_id: int):
    return _withdraw("support", support_id)


@bp.route("/confirmations/interaction/<int:interaction_id>/withdraw", methods=["POST"])
@allow(can_confirm_records)
def withdraw_interaction(interaction_id: int):
    return _withdraw("interaction", interaction_id)


@bp.route("/disputes")
@allow(can_read_disputes)
def disputes():
    return render_template("confirmations/disputes.html", disputes=services.disputes(current_user))


def init_app(app: Flask) -> None:
    # The answer routes go on the API's interactions and supports resources, which the API
    # registers after every feature (so this import comes first).
    from . import api  # noqa: F401
