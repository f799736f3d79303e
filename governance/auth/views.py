from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user, login_user, logout_user

from ..errors import DomainError, is_api_request
from ..extensions import db
from ..forms import form_status, save_form
from ..permissions import allow, can_use_account, public
from ..security import begin_session
from ..users import services as users
from . import services, throttle
from .forms import ChoosePasswordForm, LoginForm, PasswordChangeForm, TokenForm

bp = Blueprint("auth", __name__)

LOGIN_FAILED = "That email and password do not match an active account."
TOO_MANY_ATTEMPTS = "Too many failed attempts from here or for this account: try again in " \
    "{wait} second{plural}."


def _safe_next(target: str | None) -> str:
    if target and not urlsplit(target).netloc and target.startswith("/") \
            and not target.startswith("//"):
        return target
    return url_for("main.home")


@bp.route("/login", methods=["GET", "POST"])
@public
def login():
    form = LoginForm()
    if form.validate_on_submit():
        keys = throttle.sign_in_keys(services.find_user(form.email.data))
        wait = throttle.seconds_to_wait(keys)
        if wait:
            return _too_many_attempts(form, wait)
        user = services.authenticate(form.email.data, form.password.data)
        db.session.commit()
        if user is None:
            throttle.failed(keys)
            current_app.logger.warning("failed login for %s from %s", form.email.data,
                                       request.remote_addr)
            flash(LOGIN_FAILED, "danger")
            return render_template("auth/login.html", form=form), 401
        throttle.succeeded(keys)
        begin_session(user, form.remember.data)
        if user.must_change_password:
            target = url_for("auth.choose_password", next=request.args.get("next"))
        else:
            target = _safe_next(request.args.get("next"))
        return throttle.remember_device(redirect(target), user)
    return render_template("auth/login.html", form=form)


def _too_many_attempts(form, wait: int):
    """Refused before the password is looked at: 429, and when to come back."""
    flash(TOO_MANY_ATTEMPTS.format(wait=wait, plural="s" if wait > 1 else ""), "danger")
    return render_template("auth/login.html", form=form), 429, {"Retry-After": str(wait)}


@bp.route("/logout", methods=["POST"])
@allow(can_use_account)
def logout():
    services.end_all_sessions(current_user)
    db.session.commit()
    logout_user()
    flash("You are signed out on every device.", "info")
    return redirect(url_for("auth.login"))


def _signed_out(_changed) -> str:
    """Sign out once the new password is saved (it ended every session); answer the login."""
    logout_user()
    return url_for("auth.login")


@bp.route("/account", methods=["GET", "POST"])
@allow(can_use_account)
def account():
    password_form = PasswordChangeForm(prefix="pw")
    token_form = TokenForm(prefix="token")
    new_token = None
    if request.method == "POST" and "pw-new_password" in request.form:
        if password_form.validate():
            saved = save_form(
                password_form,
                lambda: services.change_password(current_user, password_form.current_password.data,
                                                 password_form.new_password.data),
                "Password changed. Every session has ended; log in with the new one.",
                _signed_out)
            if saved:
                return saved
    elif request.method == "POST" and token_form.validate():
        new_token = services.issue_token(current_user, token_form.name.data,
                                         token_form.expires_in_days.data)
        db.session.commit()
        flash("Token created. Copy it now: it is shown only once.", "success")
    status = 422 if request.method == "POST" and new_token is None else 200
    return render_template("auth/account.html", password_form=password_form,
                           token_form=token_form, new_token=new_token,
                           tokens=services.tokens_of(current_user)), status


@bp.route("/account/tokens/<int:token_id>/revoke", methods=["POST"])
@allow(can_use_account)
def revoke_token(token_id: int):
    services.revoke_token(current_user, token_id)
    db.session.commit()
    flash("Token revoked. Scripts using it are refused from now on.", "info")
    return redirect(url_for("auth.account"))



@bp.route("/account/password", methods=["GET", "POST"])
@allow(can_use_account)
def choose_password():
    """Choose your own password after logging in with a temporary one."""
    if not current_user.must_change_password:
        return render_template("auth/choose_password.html", form=None)
    form = ChoosePasswordForm()
    if form.validate_on_submit():
        saved = save_form(form, lambda: services.choose_password(current_user, form.password.data,
                                                                 "password"),
                          "Password chosen. Every other session has ended.", _stay_signed_in)
        if saved:
            return saved
    return render_template("auth/choose_password.html", form=form), form_status(form)


def _stay_signed_in(_changed) -> str:
    """Keep this session (choosing the password ended every session issued before)."""
    login_user(current_user._get_current_object())
    return _safe_next(request.args.get("next"))


@bp.route("/invitation/<token>", methods=["GET", "POST"])
@public
def accept_invitation(token: str):
    """Set your password from the invitation link an administrator gave you. Links that do not
    open count against the address, as wrong passwords do."""
    keys = [throttle.address_key()]
    wait = throttle.seconds_to_wait(keys)
    if wait:
        problem = TOO_MANY_ATTEMPTS.format(wait=wait, plural="s" if wait > 1 else "")
        return render_template("auth/invitation.html", form=None, problem=problem), 429, \
            {"Retry-After": str(wait)}
    try:
        invitation = users.open_invitation(token)
    except DomainError as error:
        throttle.failed(keys)
        return render_template("auth/invitation.html", form=None, problem=error.message), \
            error.status
    form = ChoosePasswordForm()
    if form.validate_on_submit():
        saved = save_form(form, lambda: users.accept_invitation(token, form.password.data),
                          "Your password is set and you are logged in. Next time, log in with "
                          "your email and this password.", _signed_in_as)
        if saved:
            return saved
    return render_template("auth/invitation.html", form=form, invitation=invitation,
                           problem=None), form_status(form)


def _signed_in_as(user) -> str:
    """Log the invitee in (on this browser, in place of anyone signed in); answer their home."""
    begin_session(user)
    return url_for("main.home")


# Pages a user who must choose a password can still open.
BEFORE_CHOOSING_A_PASSWORD = frozenset({"auth.choose_password", "auth.logout", "auth.login",
                                        "auth.accept_invitation", "static", "bootstrap.static"})


def choose_password_first():
    """A user who logged in with a temporary password chooses their own before anything else."""
    if request.endpoint is None or request.endpoint in BEFORE_CHOOSING_A_PASSWORD \
            or is_api_request():
        return None
    if current_user.is_authenticated and current_user.must_change_password:
        return redirect(url_for("auth.choose_password"))
    return None


def init_app(app: Flask) -> None:
    # After security's own hook, which has authenticated the request.
    app.before_request(choose_password_first)
    throttle.init_app(app)
