from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from ..errors import DomainError, NotAllowed
from ..extensions import db
from ..forms import attach_errors, form_values, save_form
from ..partnerships.models import Partnership
from ..pdf import render_pdf
from ..permissions import (
    acting_organisation_ids,
    acts_for,
    allow,
    can_add_activities,
    can_rate_activities,
    can_read_activities,
    can_read_records,
    can_retire_activities,
    partnership_scope,
    visible_or_404,
)
from ..vocabulary import PRIORITISATION_SIDES
from . import exports, services
from .forms import (
    CustomActivityForm,
    MoveForm,
    RatingForm,
    ReasonForm,
    SelectionForm,
    WithdrawForm,
    cell_choices,
)
from .models import CustomActivity
from .svg import matrix_svg

bp = Blueprint("activities", __name__)

EXERCISE = "/partnerships/<int:partnership_id>/prioritisation/<side>"


# --- loading and checking ---------------------------------------------------------------------


def _partnership(partnership_id: int) -> Partnership:
    return visible_or_404(Partnership, partnership_id, partnership_scope)


def _check_side(side: str) -> None:
    if side not in PRIORITISATION_SIDES:
        abort(404)


def _editable_partnership(partnership_id: int, side: str) -> Partnership:
    partnership = _partnership(partnership_id)
    _check_side(side)
    services.require_side_editor(current_user, partnership, side)
    return partnership


def _viewable_exercise(partnership_id: int, side: str):
    partnership = _partnership(partnership_id)
    _check_side(side)
    exercise = services.exercise_for(partnership, side)
    if exercise is None:
        abort(404, f"The {PRIORITISATION_SIDES[side].lower()} side has not started its "
                   "prioritisation exercise yet.")
    if not services.can_view_exercise(current_user, exercise):
        raise NotAllowed(f"The {PRIORITISATION_SIDES[side].lower()} side is still drafting its "
                         "exercise; each side works on its own until it marks it completed.")
    return partnership, exercise


def _custom_form() -> CustomActivityForm:
    form = CustomActivityForm(prefix="custom")
    form.stage.choices = dict(services.stages())
    return form


@bp.app_template_filter("activity_name")
def activity_name_filter(code: str) -> str:
    return services.activity_name(code)


def _download(body, mimetype: str, filename: str) -> Response:
    response = Response(body, mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "no-store"
    return response


# --- the catalogue --------------------------------------------------------------------------


def _catalogue_page(form=None, status=200):
    activities = services.all_activities(acting_organisation_ids(current_user))
    catalogue = services.current_catalogue()
    may_add = can_add_activities(current_user) and current_user.organisation_id is not None
    return render_template(
        "activities/index.html", catalogue=catalogue,
        shipped=services.activities_by_stage([a for a in activities if not a.is_custom]),
        custom=[a for a in activities if a.is_custom],
        form=form or (_custom_form() if may_add else None), may_add=may_add,
    ), status


@bp.route("/activities")
@allow(can_read_activities)
def index():
    return _catalogue_page()


@bp.route("/activities/custom", methods=["POST"])
@allow(can_add_activities)
def add_custom():
    form = _custom_form()
    if form.validate_on_submit():
        saved = save_form(
            form, lambda: services.add_custom_activity(current_user.organisation_id,
                                                       form_values(form), current_user),
            lambda row: f"Activity {row.code} “{row.name}” added for your organisation.",
            url_for(".index", _anchor="custom"), raises=(NotAllowed,))
        if saved:
            return saved
    return _catalogue_page(form, 422)


@bp.route("/activities/custom/<int:activity_id>/withdraw", methods=["POST"])
@allow(can_retire_activities)
def withdraw_custom(activity_id: int):
    row = db.session.get(CustomActivity, activity_id)
    if row is None or not acts_for(current_user, row.organisation_id):
        abort(404)
    form = WithdrawForm(prefix="withdraw")
    if not form.validate_on_submit():
        flash("Say why the activity is being withdrawn; nothing was changed.", "danger")
        return redirect(url_for(".index", _anchor="custom"))
    services.withdraw_custom_activity(row, current_user, form.reason.data)
    db.session.commit()
    flash(f"Activity {row.code} withdrawn; records that use it keep its name.", "info")
    return redirect(url_for(".index", _anchor="custom"))


# --- the exercise overview --------------------------------------------------------------------


@bp.route("/partnerships/<int:partnership_id>/prioritisation")
@allow(can_read_records)
def overview(partnership_id: int):
    partnership = _partnership(partnership_id)
    sides = []
    for side, label in PRIORITISATION_SIDES.items():
        exercise = services.exercise_for(partnership, side)
        sides.append({
            "side": side, "label": label, "exercise": exercise,
            "organisation": partnership.sponsor if side == "sponsor"
            else partnership.patient_group,
            "can_edit": services.can_edit_side(current_user, partnership, side),
            "can_view": exercise is not None
            and services.can_view_exercise(current_user, exercise),
        })
    return render_template("activities/overview.html", partnership=partnership, sides=sides,
                           steps=services.STEPS,
                           comparison=services.compare_exercises(partnership))


# --- step 1: identify -------------------------------------------------------------------------


def _selection_page(partnership, side, form, custom_form, selected=None, status=200):
    exercise = services.exercise_for(partnership, side)
    offered = services.all_activities({partnership.sponsor_id, partnership.patient_group_id})
    if selected is None:
        selected = {r.activity_code for r in exercise.selected} if exercise else set()
    offered_codes = {a.code for a in offered}
    # Activities chosen earlier but since retired stay listed so they can be kept or dropped.
    known = services.activities_by_code()
    kept = [known[code] for code in sorted(selected - offered_codes) if code in known]
    return render_template(
        "activities/identify.html", partnership=partnership, side=side, exercise=exercise,
        form=form, custom_form=custom_form, selected=selected, steps=services.STEPS,
        groups=services.activities_by_stage(offered + kept),
    ), status


@bp.route(f"{EXERCISE}/identify", methods=["GET", "POST"])
@allow(can_rate_activities)
def identify(partnership_id: int, side: str):
    partnership = _editable_partnership(partnership_id, side)
    form = SelectionForm()
    if form.validate_on_submit():
        try:
            exercise = services.start_exercise(partnership, side, current_user)
            services.select_activities(exercise, form.activity_codes.data or [], current_user)
        except DomainError as error:
            db.session.rollback()
            attach_errors(form, error)
            return _selection_page(partnership, side, form, _custom_form(),
                                   set(form.activity_codes.data or []), error.status)
        db.session.commit()
        if form.to_rating.data:
            return redirect(url_for(".rate", partnership_id=partnership.id, side=side))
        flash("Selection saved as a draft. You can come back to it at any time.", "success")
        return redirect(url_for(".identify", partnership_id=partnership.id, side=side))
    return _selection_page(partnership, side, form, _custom_form())


def _add_and_choose(partnership, side: str, custom_form: CustomActivityForm):
    """Add the side's own activity and choose it at once."""
    exercise = services.start_exercise(partnership, side, current_user)
    row = services.add_custom_activity(services.side_organisation_id(partnership, side),
                                       form_values(custom_form), current_user)
    codes = [r.activity_code for r in exercise.selected] + [row.code]
    services.select_activities(exercise, codes, current_user)
    return row


@bp.route(f"{EXERCISE}/identify/add", methods=["POST"])
@allow(can_rate_activities)
def identify_add(partnership_id: int, side: str):
    partnership = _editable_partnership(partnership_id, side)
    custom_form = _custom_form()
    if custom_form.validate_on_submit():
        saved = save_form(custom_form, lambda: _add_and_choose(partnership, side, custom_form),
                          lambda row: f"Activity {row.code} “{row.name}” added and chosen.",
                          url_for(".identify", partnership_id=partnership.id, side=side),
                          raises=(NotAllowed,))
        if saved:
            return saved
    return _selection_page(partnership, side, SelectionForm(formdata=None), custom_form,
                           status=422)


# --- step 2: rate -----------------------------------------------------------------------------


def _rating_values(rating) -> dict:
    return {name: getattr(rating, name) for name in (
        "activity_code", "benefit", "investment", "benefit_factors", "investment_factors",
        "rationale", "implementation_notes")}


def _attach_rating_errors(form: RatingForm, error: DomainError) -> None:
    entries = {entry.form.activity_code.data: entry.form for entry in form.ratings}
    for key, messages in error.fields.items():
        code, _, name = key.rpartition(".")
        entry = entries.get(code)
        if entry is not None and name in entry._fields and name != "activity_code":
            entry[name].errors = list(entry[name].errors) + list(messages)
        else:
            form.form_errors.extend(messages)
    form.form_errors.insert(0, error.message)


def _rating_page(partnership, exercise, form, status=200):
    return render_template("activities/rate.html", partnership=partnership,
                           side=exercise.side, exercise=exercise, form=form,
                           known=services.activities_by_code(), steps=services.STEPS), status


@bp.route(f"{EXERCISE}/rate", methods=["GET", "POST"])
@allow(can_rate_activities)
def rate(partnership_id: int, side: str):
    partnership = _editable_partnership(partnership_id, side)
    exercise = services.exercise_for(partnership, side)
    if exercise is None or not exercise.selected:
        flash("Choose the relevant activities first (step 1).", "info")
        return redirect(url_for(".identify", partnership_id=partnership.id, side=side))
    if request.method == "GET":
        form = RatingForm(data={"ratings": [_rating_values(r) for r in exercise.selected]})
    else:
        form = RatingForm()
    if not form.validate_on_submit():
        return _rating_page(partnership, exercise, form, 422 if request.method == "POST"
                            else 200)
    entries = [entry.form.values() for entry in form.ratings]
    try:
        services.rate_activities(exercise, entries, current_user)
    except DomainError as error:
        db.session.rollback()
        _attach_rating_errors(form, error)
        return _rating_page(partnership, exercise, form, error.status)
    db.session.commit()
    if form.to_matrix.data:
        try:
            services.advance_to_matrix(exercise, current_user)
        except DomainError as error:
            db.session.rollback()
            _attach_rating_errors(form, error)
            form.form_errors.insert(0, "Your ratings are saved as a draft.")
            return _rating_page(partnership, exercise, form, error.status)
        db.session.commit()
        return redirect(url_for(".matrix", partnership_id=partnership.id, side=side))
    flash("Ratings saved as a draft. You can come back to them at any time.", "success")
    return redirect(url_for(".rate", partnership_id=partnership.id, side=side))


# --- step 3: the matrix -----------------------------------------------------------------------


def _matrix_page(partnership, exercise, status=200):
    editable = (services.can_edit_side(current_user, partnership, exercise.side)
                and not exercise.is_completed)
    return render_template(
        "activities/matrix.html", partnership=partnership, side=exercise.side,
        exercise=exercise, matrix=services.matrix_of(exercise), editable=editable,
        can_edit=services.can_edit_side(current_user, partnership, exercise.side),
        move_form=MoveForm(formdata=None), cells=cell_choices(), reason_form=ReasonForm(),
        known=services.activities_by_code(), steps=services.STEPS,
        unrated=services.unrated_codes(exercise),
    ), status


@bp.route(f"{EXERCISE}/matrix")
@allow(can_read_records)
def matrix(partnership_id: int, side: str):
    return _matrix_page(*_viewable_exercise(partnership_id, side))


@bp.route(f"{EXERCISE}/matrix", methods=["POST"])
@allow(can_rate_activities)
def move(partnership_id: int, side: str):
    """Move an activity to another cell of the matrix (that changes its rating)."""
    _editable_partnership(partnership_id, side)
    partnership, exercise = _viewable_exercise(partnership_id, side)
    form = MoveForm()
    if not form.validate_on_submit():
        flash("Choose an activity and a cell; nothing was changed.", "danger")
        return _matrix_page(partnership, exercise, 422)
    benefit, _, investment = (form.cell.data or "").partition(":")
    try:
        rating = services.move_in_matrix(exercise, form.activity_code.data, benefit, investment,
                                         current_user)
    except DomainError as error:
        db.session.rollback()
        if error.status == 403:
            raise
        details = " ".join(m for messages in error.fields.values() for m in messages)
        flash(f"{error.message} {details}".strip(), "danger")
        return _matrix_page(partnership, exercise, error.status)
    db.session.commit()
    flash(f"{rating.activity_code} now rated benefit {rating.benefit}, investment "
          f"{rating.investment}.", "success")
    return redirect(url_for(".matrix", partnership_id=partnership.id, side=side))


@bp.route(f"{EXERCISE}/complete", methods=["POST"])
@allow(can_rate_activities)
def complete(partnership_id: int, side: str):
    partnership = _editable_partnership(partnership_id, side)
    exercise = services.exercise_for(partnership, side)
    if exercise is None:
        abort(404)
    try:
        services.complete_exercise(exercise, current_user)
    except DomainError as error:
        db.session.rollback()
        if error.status == 403:
            raise
        details = " ".join(m for messages in error.fields.values() for m in messages)
        flash(f"{error.message} {details}".strip(), "danger")
        return _matrix_page(partnership, exercise, error.status)
    db.session.commit()
    flash(f"The {PRIORITISATION_SIDES[side].lower()} side's exercise is completed and now "
          "counts in the comparison.", "success")
    return redirect(url_for(".overview", partnership_id=partnership.id))


@bp.route(f"{EXERCISE}/reopen", methods=["POST"])
@allow(can_rate_activities)
def reopen(partnership_id: int, side: str):
    partnership = _editable_partnership(partnership_id, side)
    exercise = services.exercise_for(partnership, side)
    if exercise is None:
        abort(404)
    form = ReasonForm()
    form.validate()
    try:
        services.reopen_exercise(exercise, current_user, form.reason.data)
    except DomainError as error:
        db.session.rollback()
        if error.status == 403:
            raise
        flash(error.message, "warning")
        return _matrix_page(partnership, exercise, error.status)
    db.session.commit()
    flash("The exercise is a draft again; it leaves the comparison until completed.", "info")
    return redirect(url_for(".matrix", partnership_id=partnership.id, side=side))


def _svg_title(partnership, exercise) -> str:
    return (f"{partnership.title}: {PRIORITISATION_SIDES[exercise.side]} priority matrix "
            f"({exercise.status})")


@bp.route(f"{EXERCISE}/matrix.svg")
@allow(can_read_records)
def matrix_image(partnership_id: int, side: str):
    partnership, exercise = _viewable_exercise(partnership_id, side)
    svg = matrix_svg(services.matrix_of(exercise), _svg_title(partnership, exercise))
    response = Response(svg, mimetype="image/svg+xml")
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route(f"{EXERCISE}/export.csv")
@allow(can_read_records)
def export_csv(partnership_id: int, side: str):
    _partnership_, exercise = _viewable_exercise(partnership_id, side)
    return _download(exports.exercise_csv(exercise), "text/csv; charset=utf-8",
                     f"prioritisation-{partnership_id}-{side}.csv")


@bp.route(f"{EXERCISE}/export.pdf")
@allow(can_read_records)
def export_pdf(partnership_id: int, side: str):
    partnership, exercise = _viewable_exercise(partnership_id, side)
    matrix = services.matrix_of(exercise)
    pdf = render_pdf("activities/pdf.html", {
        "partnership": partnership, "sections": [{
            "exercise": exercise, "matrix": matrix,
            "svg": matrix_svg(matrix, _svg_title(partnership, exercise)),
        }], "comparison": None, "known": services.activities_by_code(),
        "factor_labels": exports.factor_labels,
    })
    return _download(pdf, "application/pdf", f"prioritisation-{partnership_id}-{side}.pdf")


# --- comparing both sides, and coverage -------------------------------------------------------


@bp.route("/partnerships/<int:partnership_id>/prioritisation/compare")
@allow(can_read_records)
def compare(partnership_id: int):
    partnership = _partnership(partnership_id)
    comparison = services.compare_exercises(partnership)
    return render_template("activities/compare.html", partnership=partnership,
                           comparison=comparison, coverage=services.coverage_for(partnership),
                           matrices={side: services.matrix_of(ex)
                                     for side, ex in comparison.exercises.items()
                                     if ex is not None and ex.is_completed})


@bp.route("/partnerships/<int:partnership_id>/prioritisation/compare.csv")
@allow(can_read_records)
def compare_csv(partnership_id: int):
    partnership = _partnership(partnership_id)
    return _download(exports.comparison_csv(services.compare_exercises(partnership)),
                     "text/csv; charset=utf-8", f"prioritisation-{partnership_id}-compare.csv")


@bp.route("/partnerships/<int:partnership_id>/prioritisation/compare.pdf")
@allow(can_read_records)
def compare_pdf(partnership_id: int):
    partnership = _partnership(partnership_id)
    comparison = services.compare_exercises(partnership)
    sections = []
    for exercise in comparison.exercises.values():
        if exercise is not None and exercise.is_completed:
            matrix = services.matrix_of(exercise)
            sections.append({"exercise": exercise, "matrix": matrix,
                             "svg": matrix_svg(matrix, _svg_title(partnership, exercise))})
    pdf = render_pdf("activities/pdf.html", {
        "partnership": partnership, "sections": sections, "comparison": comparison,
        "known": services.activities_by_code(), "factor_labels": exports.factor_labels,
    })
    return _download(pdf, "application/pdf", f"prioritisation-{partnership_id}-compare.pdf")


@bp.route("/partnerships/<int:partnership_id>/coverage")
@allow(can_read_records)
def coverage(partnership_id: int):
    partnership = _partnership(partnership_id)
    return render_template("activities/coverage.html", partnership=partnership,
                           coverage=services.coverage_for(partnership))

