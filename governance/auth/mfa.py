"""Two-step sign-in: a code from an authenticator app (TOTP) or a one-time recovery code after
the password. Required of the roles in `MFA_REQUIRED_ROLES` once `MFA_ENROLMENT_GRACE_DAYS`
have passed since the account's first sign-in, and at once after an administrator reset it."""

import hashlib
import hmac
import re
import time
from contextlib import contextmanager
from datetime import datetime, timedelta

import pyotp
from flask import current_app

from .. import audit
from ..database import utcnow
from ..errors import Conflict, ValidationFailed
from ..extensions import db
from . import throttle
from .models import User

RECOVERY_CODE_COUNT = 10
WRONG_CODE = "This code is not right, or was used already: enter the code your authenticator " \
    "app shows now, or one of your recovery codes."
NO_CODE = "Enter the 6-digit code from your authenticator app, or a recovery code."


# --- who must use it ----------------------------------------------------------------------------


def required_of(user: User) -> bool:
    return user.role in current_app.config["MFA_REQUIRED_ROLES"]


def enrolment_deadline(user: User) -> datetime | None:
    """The end of the user's grace to set up two-step sign-in; None when it is on, not required
    of their role, or required at once (an administrator reset it)."""
    if user.mfa_enabled or user.must_enrol_mfa or not required_of(user):
        return None
    start = user.first_sign_in_at or utcnow()
    return start + timedelta(days=current_app.config["MFA_ENROLMENT_GRACE_DAYS"])


def must_enrol_now(user: User) -> bool:
    """Must the user set up two-step sign-in before anything else?"""
    if user.mfa_enabled:
        return False
    deadline = enrolment_deadline(user)
    return user.must_enrol_mfa or (deadline is not None and deadline <= utcnow())


def start_grace(user: User) -> None:
    """Note the account's first sign-in: the grace to set up two-step sign-in counts from it."""
    if user.first_sign_in_at is None:
        user.first_sign_in_at = utcnow()


# --- setting it up --------------------------------------------------------------------------------


def start_enrolment(user: User) -> None:
    """Give the user a new secret for their authenticator app; it works once confirmed."""
    if user.mfa_enabled:
        raise Conflict("Two-step sign-in is on already.")
    with _acting(user, "Two-step sign-in set-up started"):
        user.mfa_secret = pyotp.random_base32()
        user.mfa_last_step = None


def provisioning_uri(user: User) -> str:
    """The otpauth:// link (and QR code) an authenticator app reads the secret from."""
    return pyotp.TOTP(user.mfa_secret).provisioning_uri(
        name=user.email, issuer_name=current_app.config["MFA_ISSUER"])


def qr_code_svg(uri: str) -> str:
    import segno  # only the set-up page draws one

    return segno.make(uri, error="m").svg_inline(scale=4, title="QR code of the secret")


def confirm_enrolment(user: User, code: str | None) -> list[str]:
    """Switch two-step sign-in on once the user typed a code their app made from the new
    secret; return the recovery codes (shown once, only their hashes are kept)."""
    if user.mfa_enabled:
        raise Conflict("Two-step sign-in is on already.")
    if user.mfa_secret is None:
        raise Conflict("Start the set-up first: it gives the secret your app needs.")
    problem = code_problem(user, code, recovery=False)
    if problem:
        raise ValidationFailed({"code": [problem]}, "Two-step sign-in is not on yet.")
    with _acting(user, "Two-step sign-in switched on"):
        user.mfa_enabled_at = utcnow()
        user.must_enrol_mfa = False
        return _new_recovery_codes(user)


def regenerate_recovery_codes(user: User) -> list[str]:
    """Replace the user's recovery codes (the caller checked their password and code)."""
    with _acting(user, "Recovery codes regenerated"):
        return _new_recovery_codes(user)


def switch_off(user: User, actor: audit.Actor, reason: str, *, enrol_again: bool) -> None:
    """Forget the user's secret and recovery codes; with `enrol_again` they set it up again
    before anything else at their next sign-in (their sessions end)."""
    if not (user.mfa_enabled or user.mfa_secret or enrol_again):
        raise Conflict("Two-step sign-in is not on.")
    with audit.acting_as(actor, reason):
        user.mfa_secret = user.mfa_enabled_at = user.mfa_recovery_hashes = None
        user.mfa_last_step = None
        if enrol_again:
            from .services import end_all_sessions

            user.must_enrol_mfa = True
            end_all_sessions(user)
        db.session.flush()


def _new_recovery_codes(user: User) -> list[str]:
    from .services import temporary_password  # the same look-alike-free random groups

    codes = [temporary_password() for _ in range(RECOVERY_CODE_COUNT)]
    user.mfa_recovery_hashes = " ".join(_recovery_hash(code) for code in codes)
    db.session.flush()
    return codes


# --- checking a code ------------------------------------------------------------------------------


def code_problem(user: User, code: str | None, recovery: bool = True) -> str | None:
    """Why the user's code is refused, or None (the code is then used up). Wrong codes are
    slowed down as wrong passwords are, on a key of their own that only a right code clears."""
    keys = [throttle.code_key(user)]
    wait = throttle.seconds_to_wait(keys)
    if wait:
        return too_many_codes(wait)
    if not (code or "").strip():
        return NO_CODE
    if not use_code(user, code, recovery):
        throttle.failed(keys)
        return WRONG_CODE
    throttle.succeeded(keys)
    return None


def too_many_codes(wait: int) -> str:
    return f"Too many wrong codes: try again in {wait} second{'s' if wait > 1 else ''}."


def use_code(user: User, code: str, recovery: bool = True) -> bool:
    """Accept a code of the app's (of the last, this or the next 30 seconds, and later than the
    last one accepted) or, with `recovery`, one of the user's unused recovery codes."""
    typed = re.sub(r"[\s-]", "", code or "").lower()
    if typed.isdigit() and len(typed) == 6:
        return _use_app_code(user, typed)
    return recovery and _use_recovery_code(user, typed)


def _use_app_code(user: User, typed: str) -> bool:
    totp = pyotp.TOTP(user.mfa_secret or "")
    now = int(time.time()) // totp.interval
    for step in (now - 1, now, now + 1):
        if step > (user.mfa_last_step or 0) and hmac.compare_digest(totp.generate_otp(step),
                                                                    typed):
            user.mfa_last_step = step
            db.session.flush()
            return True
    return False


def _use_recovery_code(user: User, typed: str) -> bool:
    hashes = (user.mfa_recovery_hashes or "").split()
    wanted = _recovery_hash(typed)
    if not any(hmac.compare_digest(wanted, stored) for stored in hashes):
        return False
    hashes.remove(wanted)
    with _acting(user, f"Recovery code used ({len(hashes)} left)"):
        user.mfa_recovery_hashes = " ".join(hashes)
    return True


def _recovery_hash(code: str) -> str:
    """Recovery codes carry about 79 random bits: a plain SHA-256 of the code without its
    hyphens is as safe to keep as a slow hash, and found without trying each."""
    return hashlib.sha256(re.sub(r"[\s-]", "", code).lower().encode()).hexdigest()


@contextmanager
def _acting(user: User, reason: str):
    """The user's own change, audited with its reason as soon as it is made (before the
    request's other changes, an e-signature's, give the transaction another reason)."""
    with audit.acting_as(audit.Actor(user.id, user.email), reason):
        yield
        db.session.flush()
