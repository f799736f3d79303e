from flask import Blueprint, abort, current_app, render_template, request, url_for
from flask_login import current_user

from ..auth.models import User
from ..database import utcnow
from ..errors import DomainError
from ..extensions import db
from ..forms import attach_errors, form_status, form_values, int_data, save_form, version_read
from ..permissions import allow, can_manage_users
from ..security import external_url
from . import services
from .forms import (
    AccessForm,
    DeactivateForm,
    EditUserForm,
    NewUserForm,
    ReactivateForm,
    ResetTwoStepForm,
    UserFilterForm,
)

bp = Blueprint("users", __name__, url_prefix="/users")


def load_user(user_id: int) -> User:
    user = db.session.get(User, user_id)
    if user is None or user.is_void:
        abort(404)
    return user


def page_of(user: User) -> str:
    return url_for(".edit", user_id=user.id)


@bp.route("/")
@allow(can_manage_users)
def index():
    form = UserFilterForm(request.args)
    form.validate()
    page_number = request.args.get("page", 1, type=int) or 1
    criteria = services.UserFilter(
        role=form.role.data, organisation_id=int_data(form.organisation_id),
        active={"active": True, "deactivated": False}.get(form.state.data),
        page=max(1, page_number), per_page=current_app.config["PER_PAGE"])
    page = services.find_users(criteria, current_user)
    ids = [user.id for user in page.items]
    invitations = services.latest_invitations(ids)
    states = {user.id: services.account_state(user, invitations.get(user.id))
              for user in page.items}
    return render_template("users/index.html", form=form, page=page, states=states,
                           grants=services.granted_organisations(ids))


def save_and_show_access(form, save):
    """Run a service that hands out a temporary password or an invitation link: on a domain
    error roll back and show it on the form (answer None); else commit and answer the page that
    shows the secret. Only its hash is stored, so it is shown in the answer to this request
    (as a new API token is), never on a page reached by a redirect."""
    try:
        access = save()
    except DomainError as error:
        db.session.rollback()
        attach_errors(form, error)
        return None
    db.session.commit()
    link = external_url("auth.accept_invitation", token=access.invitation_token) \
        if access.invitation_token else None
    response = current_app.make_response(render_template("users/access.html", access=access,
                                                         link=link))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/new", methods=["GET", "POST"])
@allow(can_manage_users)
def create():
    form = NewUserForm()
    if form.validate_on_submit():
        shown = save_and_show_access(
            form, lambda: services.create_account(form_values(form), current_user))
        if shown:
            return shown
    return render_template("users/new.html", form=form), form_status(form)


@bp.route("/<int:user_id>", methods=["GET", "POST"])
@allow(can_manage_users)
def edit(user_id: int):
    user = load_user(user_id)
    form = EditUserForm() if request.method == "POST" else edit_form_for(user)
    if form.validate_on_submit():
        saved = save_form(form, lambda: services.change_account(
            user, form_values(form), current_user, reason=form.reason.data,
            expected_version=version_read(form),
        ), f"Changes to {user.name}'s account saved.", page_of(user))
        if saved:
            return saved
    return render_user(user, form, status=form_status(form))


def edit_form_for(user: User) -> EditUserForm:
    """The account form filled with what the account holds now."""
    form = EditUserForm(formdata=None, obj=user)
    form.version.data = user.version
    form.granted_organisation_ids.data = [
        organisation.id
        for organisation in services.granted_organisations([user.id]).get(user.id, [])]
    return form


def render_user(user: User, form: EditUserForm, reactivate_form=None, reset_form=None,
                status: int = 200):
    invitation = services.latest_invitations([user.id]).get(user.id)
    return render_template(
        "users/edit.html", user=user, form=form, invitation=invitation,
        invitation_open=invitation is not None and invitation.is_open(utcnow()),
        state=services.account_state(user, invitation),
        grants=services.granted_organisations([user.id]).get(user.id, []),
        reactivate_form=reactivate_form or ReactivateForm(formdata=None),
        reset_form=reset_form or ResetTwoStepForm(formdata=None)), status


@bp.route("/<int:user_id>/deactivate", methods=["GET", "POST"])
@allow(can_manage_users)
def deactivate(user_id: int):
    user = load_user(user_id)
    form = DeactivateForm()
    if form.validate_on_submit():
        saved = save_form(form, lambda: services.deactivate_account(user, current_user,
                                                                    form.reason.data),
                          f"{user.name}'s account is deactivated: their sessions and API "
                          "tokens stopped working.", url_for(".index"), "info")
        if saved:
            return saved
    return render_template("users/deactivate.html", form=form, user=user), form_status(form)


@bp.route("/<int:user_id>/reactivate", methods=["POST"])
@allow(can_manage_users)
def reactivate(user_id: int):
    user = load_user(user_id)
    form = ReactivateForm()
    if form.validate_on_submit():
        saved = save_form(form, lambda: services.reactivate_account(user, current_user,
                                                                    form.reason.data),
                          f"{user.name}'s account is active again.", page_of(user))
        if saved:
            return saved
    return render_user(user, edit_form_for(user), form, status=form_status(form))


@bp.route("/<int:user_id>/two-step/reset", methods=["POST"])
@allow(can_manage_users)
def reset_two_step(user_id: int):
    user = load_user(user_id)
    form = ResetTwoStepForm()
    if form.validate_on_submit():
        saved = save_form(form, lambda: services.reset_two_step(user, current_user,
                                                                form.reason.data),
                          f"{user.name}'s two-step sign-in is reset: they set it up again when "
                          "they next sign in.", page_of(user), "info")
        if saved:
            return saved
    return render_user(user, edit_form_for(user), reset_form=form, status=form_status(form))


@bp.route("/<int:user_id>/access", methods=["GET", "POST"])
@allow(can_manage_users)
def renew_access(user_id: int):
    user = load_user(user_id)
    form = AccessForm()
    if form.validate_on_submit():
        shown = save_and_show_access(
            form, lambda: services.renew_access(user, current_user, form.access.data))
        if shown:
            return shown
    return render_template("users/renew.html", form=form, user=user), form_status(form)
