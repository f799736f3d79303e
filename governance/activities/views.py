from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from ..errors import DomainError, NotAllowed, ValidationFailed
from ..extensions import db
from ..forms import attach_errors, form_status, form_values, options, save_form
from ..partnerships.models import Partnership
from ..pdf import render_pdf
from ..permissions import (
    acting_organisation_ids,
    acts_for,
    allow,
    can_add_activities,
    can_rate_activities,
    can_read_activities,
    can_read_own_exercises,
    can_read_records,
    can_retire_activities,
    can_run_own_exercises,
    partnership_scope,
    require,
    visible_or_404,
)
from ..vocabulary import PRIORITISATION_SIDES
from . import exports, services
from .forms import (
    AttachForm,
    CompareForm,
    CustomActivityForm,
    MoveForm,
    RatingForm,
    ReasonForm,
    SelectionForm,
    WithdrawForm,
    cell_choices,
)
from .models import CustomActivity, PrioritisationExercise
from .svg import matrix_svg

bp = Blueprint("activities", __name__)

EXERCISE = "/prioritisation/<int:exercise_id>"
SIDE = "/partnerships/<int:partnership_id>/prioritisation/<side>"


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


# --- loading and checking an exercise ---------------------------------------------------------


def _exercise(exercise_id: int) -> PrioritisationExercise:
    """The exercise, or 404 when it does not exist for the user (another organisation's own
    exercise, or one of a partnership the user does not see)."""
    exercise = db.session.get(PrioritisationExercise, exercise_id)
    if exercise is None or not services.is_exercise_visible(current_user, exercise):
        abort(404)
    return exercise


def _viewable_exercise(exercise_id: int) -> PrioritisationExercise:
    exercise = _exercise(exercise_id)
    if not services.can_view_exercise(current_user, exercise):
        raise NotAllowed(f"The {PRIORITISATION_SIDES[exercise.side].lower()} side is still "
                         "drafting this exercise; each side works on its own until it marks "
                         "it completed.")
    return exercise


def _editable_exercise(exercise_id: int) -> PrioritisationExercise:
    exercise = _exercise(exercise_id)
    services.require_exercise_editor(current_user, exercise)
    return exercise


def _home_of(exercise: PrioritisationExercise) -> str:
    """Where an exercise is listed: its partnership's overview, or the organisation's own."""
    if exercise.is_own:
        return url_for(".exercises", _anchor=f"exercise-{exercise.id}")
    return url_for(".overview", partnership_id=exercise.partnership_id)


def _first_error(error: DomainError) -> str:
    details = " ".join(m for messages in error.fields.values() for m in messages)
    return f"{error.message} {details}".strip()


# --- the exercises: the organisation's own and each partnership's -----------------------------


def _attach_form(exercise, partnerships, form=None) -> AttachForm:
    form = form or AttachForm(formdata=None, prefix=f"attach-{exercise.id}")
    form.partnership_id.choices = options([("", "Choose a partnership"),
                                           *((p.id, p.title) for p in partnerships)])
    return form


def _exercises_page(errored: dict | None = None, status: int = 200):
    errored = errored or {}
    own = services.own_exercises(acting_organisation_ids(current_user)) \
        if can_read_own_exercises(current_user) else []
    attachable = {}
    for exercise in own:
        if services.can_edit_exercise(current_user, exercise):
            partnerships = services.attachable_partnerships(exercise, current_user)
            attachable[exercise.id] = (partnerships, _attach_form(
                exercise, partnerships, errored.get(exercise.id)))
    partnerships = db.session.scalars(
        select(Partnership).where(partnership_scope(current_user))
        .order_by(Partnership.title, Partnership.id)).all()
    held = services.exercises_by_partnership([p.id for p in partnerships])
    organisation = current_user.organisation if current_user.organisation_id else None
    return render_template(
        "activities/exercises.html", own=own, attachable=attachable,
        partnerships=[{
            "partnership": partnership,
            "sides": [_side_summary(partnership, side, held.get(partnership.id, []))
                      for side in PRIORITISATION_SIDES],
        } for partnership in partnerships],
        may_start_own=organisation is not None
        and can_run_own_exercises(current_user, organisation.id)
        and organisation.kind in services.SIDE_OF_KIND,
        organisation=organisation, steps=services.STEPS,
    ), status


def _side_summary(partnership, side: str, exercises: list) -> dict:
    return {
        "side": side, "label": PRIORITISATION_SIDES[side],
        "organisation": partnership.sponsor if side == "sponsor" else partnership.patient_group,
        "can_edit": services.can_edit_side(current_user, partnership, side),
        "exercises": [{"exercise": exercise,
                       "can_view": services.can_view_exercise(current_user, exercise)}
                      for exercise in exercises if exercise.side == side],
    }


@bp.route("/prioritisation")
@allow(can_read_records)
def exercises():
    return _exercises_page()


@bp.route(f"{EXERCISE}/attach", methods=["POST"])
@allow(can_run_own_exercises)
def attach(exercise_id: int):
    """Make an organisation's own exercise one of a partnership's."""
    exercise = _exercise(exercise_id)
    require(can_run_own_exercises, current_user, exercise.organisation_id)
    if not exercise.is_own:
        flash(f"“{exercise.name}” is already part of a partnership; nothing was changed.",
              "warning")
        return redirect(_home_of(exercise))
    partnerships = services.attachable_partnerships(exercise, current_user)
    form = _attach_form(exercise, partnerships, AttachForm(prefix=f"attach-{exercise.id}"))
    if form.validate_on_submit():
        saved = save_form(
            form, lambda: services.attach_exercise(exercise, form.partnership_id.data,
                                                   current_user),
            lambda row: f"“{row.name}” is now one of the {row.side.replace('_', ' ')} "
                        f"exercises of {row.partnership.title}.",
            lambda row: url_for(".overview", partnership_id=row.partnership_id),
            raises=(NotAllowed,))
        if saved:
            return saved
    return _exercises_page({exercise.id: form}, form_status(form))


# --- a partnership's exercises ------------------------------------------------------------------


@bp.route("/partnerships/<int:partnership_id>/prioritisation")
@allow(can_read_records)
def overview(partnership_id: int):
    partnership = _partnership(partnership_id)
    held = services.exercises_of(partnership)
    own = []
    if can_run_own_exercises(current_user):
        own = [exercise for exercise in services.own_exercises(
            {partnership.sponsor_id, partnership.patient_group_id})
            if services.can_edit_exercise(current_user, exercise)
            and exercise.organisation_id == services.side_organisation_id(partnership,
                                                                          exercise.side)]
    comparison = services.compare_exercises(partnership)
    return render_template(
        "activities/overview.html", partnership=partnership,
        sides=[_side_summary(partnership, side, held) for side in PRIORITISATION_SIDES],
        own={exercise.id: (exercise, _attach_form(exercise, [partnership])) for exercise in own},
        steps=services.STEPS, comparison=comparison)


# --- step 1: identify (and name) --------------------------------------------------------------


def _selection_page(form, custom_form, *, exercise=None, partnership=None, side=None,
                    organisation_ids=None, selected=None, status=200):
    """Step 1 of an exercise, or of a new one (exercise None) for a partnership's side or an
    organisation's own."""
    if exercise is not None:
        offered = services.selectable_activities(exercise)
        partnership, side = exercise.partnership, exercise.side
        if selected is None:
            selected = {r.activity_code for r in exercise.selected}
    else:
        offered = services.all_activities(organisation_ids)
    selected = selected or set()
    offered_codes = {a.code for a in offered}
    # Activities chosen earlier but since retired stay listed so they can be kept or dropped.
    known = services.activities_by_code()
    kept = [known[code] for code in sorted(selected - offered_codes) if code in known]
    return render_template(
        "activities/identify.html", partnership=partnership, side=side, exercise=exercise,
        form=form, custom_form=custom_form, selected=selected, steps=services.STEPS,
        groups=services.activities_by_stage(offered + kept),
    ), status


def _choose(form: SelectionForm, exercise, status_page, next_step: bool):
    """Save step 1's name and selection; on an error show it on the page, changing nothing."""
    try:
        services.rename_exercise(exercise, form.name.data, current_user)
        services.select_activities(exercise, form.activity_codes.data or [], current_user)
    except DomainError as error:
        db.session.rollback()
        if error.status == 403:
            raise
        attach_errors(form, error)
        return status_page(error.status)
    db.session.commit()
    if next_step:
        return redirect(url_for(".rate", exercise_id=exercise.id))
    flash("Selection saved as a draft. You can come back to it at any time.", "success")
    return redirect(url_for(".identify", exercise_id=exercise.id))


@bp.route(f"{EXERCISE}/identify", methods=["GET", "POST"])
@allow(can_rate_activities)
def identify(exercise_id: int):
    exercise = _editable_exercise(exercise_id)
    form = SelectionForm(name=exercise.name)
    if form.validate_on_submit():
        return _choose(form, exercise, lambda status: _selection_page(
            form, _custom_form(), exercise=exercise, selected=set(form.activity_codes.data or []),
            status=status), form.to_rating.data)
    return _selection_page(form, _custom_form(), exercise=exercise,
                           status=form_status(form))


def _start_page(form, start, **context):
    """Create the exercise and save step 1 at once; an error leaves nothing behind."""
    if not form.validate_on_submit():
        return _selection_page(form, None, status=form_status(form), **context)
    try:
        exercise = start(form.name.data)
    except DomainError as error:
        db.session.rollback()
        if error.status == 403:
            raise
        attach_errors(form, error)
        return _selection_page(form, None, selected=set(form.activity_codes.data or []),
                               status=error.status, **context)
    return _choose(form, exercise, lambda status: _selection_page(
        form, None, selected=set(form.activity_codes.data or []), status=status, **context),
        form.to_rating.data)


@bp.route("/partnerships/<int:partnership_id>/prioritisation/<side>/new",
          methods=["GET", "POST"])
@allow(can_rate_activities)
def start(partnership_id: int, side: str):
    """Start a named exercise for one side of a partnership (step 1 of a new one)."""
    partnership = _editable_partnership(partnership_id, side)
    form = SelectionForm(name=services.suggested_name(partnership, side))
    return _start_page(
        form, lambda name: services.start_exercise(partnership, side, name, current_user),
        partnership=partnership, side=side,
        organisation_ids={partnership.sponsor_id, partnership.patient_group_id})


@bp.route("/prioritisation/new", methods=["GET", "POST"])
@allow(can_run_own_exercises)
def start_own():
    """Start an exercise of the user's own organisation, outside any partnership."""
    organisation = current_user.organisation if current_user.organisation_id else None
    if organisation is None:
        raise NotAllowed("Your account belongs to no organisation, so it cannot run an "
                         "exercise of its own.")
    side = services.side_of_organisation(organisation)
    form = SelectionForm(name=services.suggested_name(None, side, organisation.id))
    return _start_page(
        form, lambda name: services.start_own_exercise(organisation.id, name, current_user),
        side=side, organisation_ids={organisation.id})


def _add_and_choose(exercise, custom_form: CustomActivityForm):
    """Add the side's own activity and choose it at once."""
    row = services.add_custom_activity(exercise.organisation_id, form_values(custom_form),
                                       current_user)
    codes = [r.activity_code for r in exercise.selected] + [row.code]
    services.select_activities(exercise, codes, current_user)
    return row


@bp.route(f"{EXERCISE}/identify/add", methods=["POST"])
@allow(can_rate_activities)
def identify_add(exercise_id: int):
    exercise = _editable_exercise(exercise_id)
    custom_form = _custom_form()
    if custom_form.validate_on_submit():
        saved = save_form(custom_form, lambda: _add_and_choose(exercise, custom_form),
                          lambda row: f"Activity {row.code} “{row.name}” added and chosen.",
                          url_for(".identify", exercise_id=exercise.id),
                          raises=(NotAllowed,))
        if saved:
            return saved
    return _selection_page(SelectionForm(formdata=None, name=exercise.name), custom_form,
                           exercise=exercise, status=422)


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


def _rating_page(exercise, form, status=200):
    return render_template("activities/rate.html", partnership=exercise.partnership,
                           side=exercise.side, exercise=exercise, form=form,
                           known=services.activities_by_code(), steps=services.STEPS), status


@bp.route(f"{EXERCISE}/rate", methods=["GET", "POST"])
@allow(can_rate_activities)
def rate(exercise_id: int):
    exercise = _editable_exercise(exercise_id)
    if not exercise.selected:
        flash("Choose the relevant activities first (step 1).", "info")
        return redirect(url_for(".identify", exercise_id=exercise.id))
    if request.method == "GET":
        form = RatingForm(data={"ratings": [_rating_values(r) for r in exercise.selected]})
    else:
        form = RatingForm()
    if not form.validate_on_submit():
        return _rating_page(exercise, form, form_status(form))
    entries = [entry.form.values() for entry in form.ratings]
    try:
        services.rate_activities(exercise, entries, current_user)
    except DomainError as error:
        db.session.rollback()
        _attach_rating_errors(form, error)
        return _rating_page(exercise, form, error.status)
    db.session.commit()
    if form.to_matrix.data:
        try:
            services.advance_to_matrix(exercise, current_user)
        except DomainError as error:
            db.session.rollback()
            _attach_rating_errors(form, error)
            form.form_errors.insert(0, "Your ratings are saved as a draft.")
            return _rating_page(exercise, form, error.status)
        db.session.commit()
        return redirect(url_for(".matrix", exercise_id=exercise.id))
    flash("Ratings saved as a draft. You can come back to them at any time.", "success")
    return redirect(url_for(".rate", exercise_id=exercise.id))


# --- step 3: the matrix -----------------------------------------------------------------------


def _matrix_page(exercise, status=200):
    can_edit = services.can_edit_exercise(current_user, exercise)
    return render_template(
        "activities/matrix.html", partnership=exercise.partnership, side=exercise.side,
        exercise=exercise, matrix=services.matrix_of(exercise),
        editable=can_edit and not exercise.is_completed, can_edit=can_edit,
        move_form=MoveForm(formdata=None), cells=cell_choices(), reason_form=ReasonForm(),
        known=services.activities_by_code(), steps=services.STEPS,
        unrated=services.unrated_codes(exercise),
    ), status


@bp.route(f"{EXERCISE}/matrix")
@allow(can_read_records)
def matrix(exercise_id: int):
    return _matrix_page(_viewable_exercise(exercise_id))


@bp.route(f"{EXERCISE}/matrix", methods=["POST"])
@allow(can_rate_activities)
def move(exercise_id: int):
    """Move an activity to another cell of the matrix (that changes its rating)."""
    exercise = _editable_exercise(exercise_id)
    form = MoveForm()
    if not form.validate_on_submit():
        flash("Choose an activity and a cell; nothing was changed.", "danger")
        return _matrix_page(exercise, 422)
    benefit, _, investment = (form.cell.data or "").partition(":")
    try:
        rating = services.move_in_matrix(exercise, form.activity_code.data, benefit, investment,
                                         current_user)
    except DomainError as error:
        db.session.rollback()
        if error.status == 403:
            raise
        flash(_first_error(error), "danger")
        return _matrix_page(exercise, error.status)
    db.session.commit()
    flash(f"{rating.activity_code} now rated benefit {rating.benefit}, investment "
          f"{rating.investment}.", "success")
    return redirect(url_for(".matrix", exercise_id=exercise.id))


@bp.route(f"{EXERCISE}/complete", methods=["POST"])
@allow(can_rate_activities)
def complete(exercise_id: int):
    exercise = _editable_exercise(exercise_id)
    try:
        services.complete_exercise(exercise, current_user)
    except DomainError as error:
        db.session.rollback()
        if error.status == 403:
            raise
        flash(_first_error(error), "danger")
        return _matrix_page(exercise, error.status)
    db.session.commit()
    flash(f"“{exercise.name}” is completed"
          + (" and now counts in the comparison." if not exercise.is_own else
             "; attach it to a partnership to compare it with a partner's."), "success")
    return redirect(_home_of(exercise))


@bp.route(f"{EXERCISE}/reopen", methods=["POST"])
@allow(can_rate_activities)
def reopen(exercise_id: int):
    exercise = _editable_exercise(exercise_id)
    form = ReasonForm()
    form.validate()
    try:
        services.reopen_exercise(exercise, current_user, form.reason.data)
    except DomainError as error:
        db.session.rollback()
        if error.status == 403:
            raise
        flash(error.message, "warning")
        return _matrix_page(exercise, error.status)
    db.session.commit()
    flash("The exercise is a draft again; it leaves the comparison until completed.", "info")
    return redirect(url_for(".matrix", exercise_id=exercise.id))


def _title_of(exercise) -> str:
    where = exercise.partnership.title if exercise.partnership else exercise.organisation.name
    return f"{where}: {exercise.name}"


def _svg_title(exercise) -> str:
    return (f"{_title_of(exercise)}, {PRIORITISATION_SIDES[exercise.side]} priority matrix "
            f"({exercise.status})")


@bp.route(f"{EXERCISE}/matrix.svg")
@allow(can_read_records)
def matrix_image(exercise_id: int):
    exercise = _viewable_exercise(exercise_id)
    svg = matrix_svg(services.matrix_of(exercise), _svg_title(exercise))
    response = Response(svg, mimetype="image/svg+xml")
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route(f"{EXERCISE}/export.csv")
@allow(can_read_records)
def export_csv(exercise_id: int):
    exercise = _viewable_exercise(exercise_id)
    return _download(exports.exercise_csv(exercise), "text/csv; charset=utf-8",
                     f"prioritisation-exercise-{exercise.id}.csv")


def _pdf_section(exercise) -> dict:
    matrix = services.matrix_of(exercise)
    return {"exercise": exercise, "matrix": matrix,
            "svg": matrix_svg(matrix, _svg_title(exercise))}


@bp.route(f"{EXERCISE}/export.pdf")
@allow(can_read_records)
def export_pdf(exercise_id: int):
    exercise = _viewable_exercise(exercise_id)
    pdf = render_pdf("activities/pdf.html", {
        "title": _title_of(exercise), "partnership": exercise.partnership,
        "sections": [_pdf_section(exercise)], "comparison": None,
        "known": services.activities_by_code(), "factor_labels": exports.factor_labels,
    })
    return _download(pdf, "application/pdf", f"prioritisation-exercise-{exercise.id}.pdf")


# --- the URLs of the time when a partnership side held one exercise ---------------------------

SIDE_STEPS = {  # old step -> (endpoint, its GET page when the step only takes a POST)
    "identify": ".identify", "identify/add": ".identify", "rate": ".rate",
    "matrix": ".matrix", "matrix.svg": ".matrix_image", "export.csv": ".export_csv",
    "export.pdf": ".export_pdf", "complete": ".matrix", "reopen": ".matrix",
}
SIDE_POSTS = {"identify": ".identify", "identify/add": ".identify_add", "rate": ".rate",
              "matrix": ".move", "complete": ".complete", "reopen": ".reopen"}


@allow(can_read_records)
def side_step(partnership_id: int, side: str, step: str):
    """Send an old single-exercise URL on to the side's first exercise (a POST keeps its
    method and body)."""
    partnership = _partnership(partnership_id)
    _check_side(side)
    exercise = services.exercise_for(partnership, side)
    posted = request.method == "POST"
    if exercise is None:
        if step == "identify":
            return redirect(url_for(".start", partnership_id=partnership.id, side=side),
                            307 if posted else 302)
        abort(404, f"The {PRIORITISATION_SIDES[side].lower()} side has not started a "
                   "prioritisation exercise yet.")
    endpoint = SIDE_POSTS[step] if posted else SIDE_STEPS[step]
    return redirect(url_for(endpoint, exercise_id=exercise.id), 307 if posted else 302)


for _step in SIDE_STEPS:
    bp.add_url_rule(f"{SIDE}/{_step}", "side_step", side_step, defaults={"step": _step},
                    methods=["GET", "POST"] if _step in SIDE_POSTS else ["GET"])


# --- comparing a pair, and coverage -----------------------------------------------------------


def _exercise_label(exercise) -> str:
    return f"{exercise.name} (completed {exercise.completed_at:%d %b %Y})"


def _compared(partnership):
    """The comparison of the pair the user chose (?sponsor=&patient_group=, exercise ids), or
    of the default pair; a pair that cannot be compared is named on the form (422)."""
    form = CompareForm(formdata=request.args)
    chosen = {}
    for side in PRIORITISATION_SIDES:
        value = form[side].data
        chosen[side] = None if value is None else value if isinstance(value, int) else 0
    status = 200
    try:
        comparison = services.compare_exercises(partnership, chosen)
    except ValidationFailed as error:
        comparison = services.compare_exercises(partnership)
        attach_errors(form, error)
        status = error.status
    for side in PRIORITISATION_SIDES:
        form[side].choices = options(
            (exercise.id, _exercise_label(exercise))
            for exercise in comparison.choices.get(side, []))
        current = comparison.exercises[side]
        form[side].data = current.id if current is not None and current.is_completed else None
    return comparison, form, status


def _pair_args(comparison) -> dict:
    return {side: exercise.id for side, exercise in comparison.exercises.items()
            if exercise is not None and exercise.is_completed}


@bp.route("/partnerships/<int:partnership_id>/prioritisation/compare")
@allow(can_read_records)
def compare(partnership_id: int):
    partnership = _partnership(partnership_id)
    comparison, form, status = _compared(partnership)
    return _compare_page(partnership, comparison, form, status)


def _compare_page(partnership, comparison, form, status):
    return render_template(
        "activities/compare.html", partnership=partnership, comparison=comparison, form=form,
        pair=_pair_args(comparison),
        coverage=services.coverage_for(partnership, comparison=comparison),
        matrices={side: services.matrix_of(ex) for side, ex in comparison.exercises.items()
                  if ex is not None and ex.is_completed}), status


@bp.route("/partnerships/<int:partnership_id>/prioritisation/compare.csv")
@allow(can_read_records)
def compare_csv(partnership_id: int):
    partnership = _partnership(partnership_id)
    comparison, form, status = _compared(partnership)
    if status != 200:
        return _compare_page(partnership, comparison, form, status)
    return _download(exports.comparison_csv(comparison), "text/csv; charset=utf-8",
                     f"prioritisation-{partnership_id}-compare.csv")


@bp.route("/partnerships/<int:partnership_id>/prioritisation/compare.pdf")
@allow(can_read_records)
def compare_pdf(partnership_id: int):
    partnership = _partnership(partnership_id)
    comparison, form, status = _compared(partnership)
    if status != 200:
        return _compare_page(partnership, comparison, form, status)
    sections = [_pdf_section(exercise) for exercise in comparison.exercises.values()
                if exercise is not None and exercise.is_completed]
    pdf = render_pdf("activities/pdf.html", {
        "title": partnership.title, "partnership": partnership, "sections": sections,
        "comparison": comparison, "known": services.activities_by_code(),
        "factor_labels": exports.factor_labels,
    })
    return _download(pdf, "application/pdf", f"prioritisation-{partnership_id}-compare.pdf")


@bp.route("/partnerships/<int:partnership_id>/coverage")
@allow(can_read_records)
def coverage(partnership_id: int):
    partnership = _partnership(partnership_id)
    comparison, form, status = _compared(partnership)
    return render_template("activities/coverage.html", partnership=partnership, form=form,
                           coverage=services.coverage_for(partnership, comparison=comparison)
                           ), status
