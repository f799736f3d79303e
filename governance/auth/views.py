from datetime import timedelta
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, logout_user

from ..database import utcnow
from ..errors import DomainError, is_api_request
from ..extensions import db
from ..forms import attach_errors, form_status, save_form
from ..permissions import allow, can_use_account, public
from ..security import begin_session
from ..users import services as users
from . import mfa, services, throttle
from .forms import (
    ChoosePasswordForm,
    ConfirmTwoStepForm,
    LoginForm,
    PasswordAndCodeForm,
    PasswordChangeForm,
    SignInCodeForm,
    StartTwoStepForm,
    TokenForm,
)
from .models import User

bp = Blueprint("auth", __name__)

LOGIN_FAILED = "That email and password do not match an active account."
TOO_MANY_ATTEMPTS = "Too many failed attempts from here or for this account: try again in " \
    "{wait} second{plural}."
# How long the page asking for the second factor waits after the right password.
CODE_PAGE_MINUTES = 5
PENDING_SIGN_IN = "pending_sign_in"


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
        target = after_password(user, form.remember.data, request.args.get("next"))
        return throttle.remember_device(redirect(target), user)
    return render_template("auth/login.html", form=form)


def after_password(user: User, remember: bool = False, next_url: str | None = None) -> str:
    """The right password: sign in, or with two-step sign-in on, ask for the code first (the
    account stays out of reach until then). Answer where the browser goes next."""
    if not user.mfa_enabled:
        return _signed_in(user, remember, next_url)
    until = utcnow() + timedelta(minutes=CODE_PAGE_MINUTES)
    session[PENDING_SIGN_IN] = [user.id, user.session_generation, until.timestamp(), remember,
                                next_url]
    return url_for("auth.sign_in_code")


def sign_in(user: User, remember: bool = False) -> None:
    """Start the browser's session as the user: the one place a sign-in ends (a new session:
    the pending sign-in goes with the old one)."""
    begin_session(user, remember)


def _signed_in(user: User, remember: bool, next_url: str | None) -> str:
    sign_in(user, remember)
    if user.must_change_password:
        return url_for("auth.choose_password", next=next_url)
    return _safe_next(next_url)


def _pending_sign_in():
    """The user whose right password this browser gave in the last minutes, with whether to
    keep them signed in and where to go next; None when there is none (or it expired)."""
    try:
        user_id, generation, until, remember, next_url = session.get(PENDING_SIGN_IN)
    except (TypeError, ValueError):
        return None
    user = db.session.get(User, user_id) if isinstance(user_id, int) else None
    if user is None or not user.is_active or user.session_generation != generation \
            or not user.mfa_enabled or until < utcnow().timestamp():
        session.pop(PENDING_SIGN_IN, None)
        return None
    return user, bool(remember), next_url


@bp.route("/login/code", methods=["GET", "POST"])
@public
def sign_in_code():
    """The second step of a sign-in with two-step sign-in on: the app's code or a recovery
    code. Wrong codes slow down (never lock); the right one signs in."""
    pending = _pending_sign_in()
    if pending is None:
        return render_template("auth/sign_in_code.html", form=None,
                               minutes=CODE_PAGE_MINUTES), 200 if request.method == "GET" else 422
    user, remember, next_url = pending
    form = SignInCodeForm()
    if not form.validate_on_submit():
        return render_template("auth/sign_in_code.html", form=form), form_status(form)
    wait = throttle.seconds_to_wait([throttle.code_key(user)])
    if wait:
        flash(mfa.too_many_codes(wait), "danger")
        return render_template("auth/sign_in_code.html", form=form), 429, \
            {"Retry-After": str(wait)}
    problem = mfa.code_problem(user, form.code.data)
    if problem:
        db.session.rollback()
        current_app.logger.warning("wrong sign-in code for %s from %s", user.email,
                                   request.remote_addr)
        form.code.errors = [problem]
        return render_template("auth/sign_in_code.html", form=form), 401
    db.session.commit()
    return redirect(_signed_in(user, remember, next_url))


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
        new_token = _create_token(token_form)
    status = 422 if request.method == "POST" and new_token is None else 200
    return render_template("auth/account.html", password_form=password_form,
                           token_form=token_form, new_token=new_token,
                           tokens=services.tokens_of(current_user)), status


def _create_token(form: TokenForm) -> str | None:
    """A token for the account page's form (after the code, with two-step sign-in on)."""
    try:
        errors = services.second_factor_errors(current_user, form.code.data)
        if errors:
            raise DomainError("The token was not created.", errors)
        token = services.issue_token(current_user, form.name.data, form.expires_in_days.data)
    except DomainError as error:
        db.session.rollback()
        attach_errors(form, error)
        return None
    db.session.commit()
    flash("Token created. Copy it now: it is shown only once.", "success")
    return token


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
    sign_in(current_user._get_current_object())
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
    """Log the invitee in (on this browser, in place of anyone signed in), after their code
    when they use two-step sign-in; answer where they go."""
    logout_user()
    return after_password(user)


# --- two-step sign-in ----------------------------------------------------------------------------


@bp.route("/account/two-step")
@allow(can_use_account)
def two_step():
    """Set up two-step sign-in, or see it on: new recovery codes, switching it off."""
    return _two_step_page()


@bp.route("/account/two-step/start", methods=["POST"])
@allow(can_use_account)
def start_two_step():
    form = StartTwoStepForm()
    if form.validate_on_submit():
        saved = save_form(form, lambda: mfa.start_enrolment(current_user),
                          "Add this secret to your authenticator app, then enter the code it "
                          "shows.", url_for(".two_step"), "info")
        if saved:
            return saved
    return _two_step_page(start_form=form, status=form_status(form))


@bp.route("/account/two-step/confirm", methods=["POST"])
@allow(can_use_account)
def confirm_two_step():
    form = ConfirmTwoStepForm()
    return _codes_or_page(form, "confirm_form",
                          lambda: mfa.confirm_enrolment(current_user, form.code.data),
                          "Two-step sign-in is on. From now on you give a code after your "
                          "password.")


@bp.route("/account/two-step/recovery-codes", methods=["POST"])
@allow(can_use_account)
def regenerate_recovery_codes():
    form = PasswordAndCodeForm(prefix="codes")
    return _codes_or_page(form, "codes_form", lambda: services.regenerate_recovery_codes(
        current_user, form.password.data, form.code.data),
        "New recovery codes: the old ones no longer work.")


@bp.route("/account/two-step/off", methods=["POST"])
@allow(can_use_account)
def switch_off_two_step():
    form = PasswordAndCodeForm(prefix="off")
    if form.validate_on_submit():
        saved = save_form(form, lambda: services.switch_off_two_step(
            current_user, form.password.data, form.code.data),
            "Two-step sign-in is off: your password alone signs you in.", url_for(".two_step"),
            "info")
        if saved:
            return saved
    return _two_step_page(off_form=form, status=form_status(form))


def _codes_or_page(form, name: str, save, success: str):
    """Run a service that hands out recovery codes: show them in this answer only (their
    hashes alone are kept), or the page again with the form's errors."""
    if form.validate_on_submit():
        try:
            codes = save()
        except DomainError as error:
            db.session.rollback()
            attach_errors(form, error)
        else:
            db.session.commit()
            flash(success, "success")
            return _two_step_page(recovery_codes=codes)
    return _two_step_page(**{name: form}, status=form_status(form))


def _two_step_page(status: int = 200, recovery_codes=None, **forms):
    user = current_user
    uri = mfa.provisioning_uri(user) if user.mfa_secret and not user.mfa_enabled else None
    response = current_app.make_response((render_template(
        "auth/two_step.html", recovery_codes=recovery_codes, uri=uri,
        qr_code=mfa.qr_code_svg(uri) if uri else None,
        required=mfa.required_of(user), must_enrol=mfa.must_enrol_now(user),
        recovery_codes_left=len((user.mfa_recovery_hashes or "").split()),
        start_form=forms.get("start_form") or StartTwoStepForm(formdata=None),
        confirm_form=forms.get("confirm_form") or ConfirmTwoStepForm(formdata=None),
        codes_form=forms.get("codes_form") or PasswordAndCodeForm(prefix="codes",
                                                                  formdata=None),
        off_form=forms.get("off_form") or PasswordAndCodeForm(prefix="off", formdata=None),
    ), status))
    response.headers["Cache-Control"] = "no-store"  # the secret and the recovery codes
    return response


def two_step_deadline():
    """For every page's banner: the date by which the signed-in user must set up two-step
    sign-in, while they may still go without."""
    if current_user.is_authenticated and not mfa.must_enrol_now(current_user):
        return mfa.enrolment_deadline(current_user)
    return None


# --- a first step before anything else ------------------------------------------------------------


# Pages open whatever step a signed-in user has still to take.
ALWAYS_OPEN = frozenset({"auth.logout", "auth.login", "auth.sign_in_code",
                         "auth.accept_invitation", "static", "bootstrap.static"})
# Each step a user may have to take first, and the pages it takes.
FIRST_STEPS = {
    "auth.choose_password": frozenset({"auth.choose_password"}),
    "auth.two_step": frozenset({"auth.two_step", "auth.start_two_step",
                                "auth.confirm_two_step"}),
}


def first_step(user: User) -> str | None:
    """The page the user must go through before anything else: choosing their password after
    a temporary one, then setting up two-step sign-in when it is due."""
    if user.must_change_password:
        return "auth.choose_password"
    if mfa.must_enrol_now(user):
        return "auth.two_step"
    return None


def take_first_steps_first():
    """Send a signed-in user with a first step to take to its page, whatever they asked for
    (API tokens are their own factor: the API is not held up)."""
    if request.endpoint is None or request.endpoint in ALWAYS_OPEN or is_api_request() \
            or not current_user.is_authenticated:
        return None
    step = first_step(current_user)
    if step is not None and request.endpoint not in FIRST_STEPS[step]:
        return redirect(url_for(step))
    return None


def init_app(app: Flask) -> None:
    # After security's own hook, which has authenticated the request.
    app.before_request(take_first_steps_first)
    app.add_template_global(two_step_deadline)
    throttle.init_app(app)
