"""Accounts: passwords, sign-in (slowed down, never locked: throttle.py), session invalidation,
API tokens."""

import functools
import secrets
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app
from sqlalchemy import func, select, update
from sqlalchemy.exc import SQLAlchemyError

from ..audit import Actor
from ..database import utcnow, writing
from ..errors import Conflict, NotFound, ValidationFailed
from ..extensions import db
from ..organisations.models import Organisation
from ..vocabulary import ROLES
from . import mfa, throttle
from .models import ApiToken, User
from .tokens import hash_token

_hasher = PasswordHasher()
MIN_PASSWORD_LENGTH = 12
# zxcvbn's score (0-4) a new password needs: 3 is "safely unguessable" against an online attack
# and most offline ones; below it are the common passwords, their variants and keyboard walks.
MIN_PASSWORD_SCORE = 3
# A token's last use is recorded at most this often: the account page shows it, so a token
# nobody uses any more, or one used when it should not be, stands out; recording every request
# would add a write to each.
TOKEN_USE_RECORDED_EVERY = timedelta(hours=1)
# Every API token expires: after 90 days unless its owner chose otherwise, at most after a year.
DEFAULT_TOKEN_DAYS = 90
MAX_TOKEN_DAYS = 365


# Checked against when the email is unknown, so a wrong email costs as much time as a wrong
# password and the answer does not reveal which accounts exist. Made at first use: a hash takes
# about a fifth of a second, which every process would otherwise pay at start.
@functools.cache
def _dummy_hash() -> str:
    return _hasher.hash("not-a-real-password")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def password_matches(user: User, password: str) -> bool:
    try:
        return _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def check_signature(actor: User, password: str | None, meaning: str | None, meanings: dict,
                    what: str, record: str, code: str | None = None) -> str:
    """Check an electronic signature (the signer's password, with two-step sign-in on their
    code too, and a stated meaning, one of `meanings`); return the statement signed. `what`
    names the signed thing for the signer, `record` for the log."""
    not_text = {name: ["Not a valid string."] for name, value in
                (("password", password), ("meaning", meaning), ("code", code))
                if value is not None and not isinstance(value, str)}
    if not_text:
        raise ValidationFailed(not_text, f"The {what} was not signed.")
    errors = {}
    if meaning not in meanings:
        errors["meaning"] = ["State what your signature means."]
    problems = reentry_errors(actor, password, code,
                              f"This is not your password; the {what} was not signed.")
    if problems:
        errors.update(problems)
        current_app.logger.warning("refused signature of %s by %s: %s", record, actor.email,
                                   problems)
    if errors:
        raise ValidationFailed(errors, f"The {what} was not signed.")
    return meanings[meaning]


def reentry_errors(user: User, password: str | None, code: str | None,
                   wrong: str) -> dict[str, list[str]]:
    """The problems, by field, of a signed-in user's password typed again and, when they use
    two-step sign-in, their code (looked at only after the right password)."""
    problem = reentry_problem(user, password, wrong)
    if problem:
        return {"password": [problem]}
    return second_factor_errors(user, code)


def second_factor_errors(user: User, code: str | None) -> dict[str, list[str]]:
    """The code's problem, when the user uses two-step sign-in (else none)."""
    problem = mfa.code_problem(user, code) if user.mfa_enabled else None
    return {"code": [problem]} if problem else {}


def reentry_problem(user: User, password: str | None, wrong: str) -> str | None:
    """Why a signed-in user's password, typed again, is refused (`wrong` when it is not
    theirs), or None. Slowed down as a sign-in is: repeated wrong passwords wait."""
    keys = [throttle.reentry_key(user)]
    wait = throttle.seconds_to_wait(keys)
    if wait:
        return f"Too many wrong passwords: try again in {wait} second{'s' if wait > 1 else ''}."
    if not password or not password_matches(user, password):
        throttle.failed(keys)
        return wrong
    throttle.succeeded(keys)
    return None


def check_new_password(password: str, field: str = "password", *, email: str = "",
                       name: str = "") -> None:
    """Refuse a password that is short, holds the account's email, or is among (or close to)
    the commonest passwords: zxcvbn's lists, checked here, offline."""
    problem = new_password_problem(password or "", email, name)
    if problem:
        raise ValidationFailed({field: [problem]})


def new_password_problem(password: str, email: str, name: str) -> str | None:
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"Use at least {MIN_PASSWORD_LENGTH} characters."
    local_part = email.split("@")[0].lower()
    if email and (email.lower() in password.lower()
                  or (len(local_part) >= 4 and local_part in password.lower())):
        return "Do not use your email address in your password."
    from zxcvbn import zxcvbn  # its word lists take memory only processes that set passwords need

    strength = zxcvbn(password[:100], user_inputs=[email, local_part, *name.split()])
    if strength["score"] < MIN_PASSWORD_SCORE:
        warning = strength["feedback"]["warning"] or "It would be easy to guess."
        return f"{warning.rstrip('.')}. Choose a longer phrase of unrelated words."
    return None


def find_user(email: str) -> User | None:
    return db.session.scalar(select(User).where(func.lower(User.email) == email.strip().lower()))


# Roles whose accounts need an organisation. From the command line, advocates and partners only:
# a compliance officer or auditor created there without one acts for the whole installation
# (the first roadmap). The administrators' pages ask an organisation of every role but admin.
ORGANISATION_NEEDED_BY_COMMAND = frozenset({"advocate", "partner"})
ORGANISATION_NEEDED_BY_PAGES = frozenset(ROLES) - {"admin"}
# A temporary password is read aloud or copied: no look-alike characters (0/O, 1/l/I).
_TEMPORARY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"


def validate_account(role: str | None, organisation_name: str | None = None,
                     organisation_id=None,
                     organisation_needed_by=ORGANISATION_NEEDED_BY_COMMAND,
                     organisation_field: str = "organisation",
                     ) -> tuple[Organisation | None, dict[str, list[str]]]:
    """Check a role and the organisation (by name or by id) an account would have; return the
    organisation and the problems found, by field (the organisation's is `organisation_field`)."""
    errors: dict[str, list[str]] = {}
    if role not in ROLES:
        errors["role"] = [f"Choose one of: {', '.join(ROLES)}."]
    organisation = None
    if organisation_name:
        organisation = db.session.scalar(
            select(Organisation).where(Organisation.name == organisation_name)
        )
        if organisation is None:
            errors[organisation_field] = [f"No organisation is called {organisation_name!r}."]
    elif organisation_id is not None:
        if isinstance(organisation_id, int):
            organisation = db.session.get(Organisation, organisation_id)
        if organisation is None or organisation.is_void:
            organisation = None
            errors[organisation_field] = ["Choose one of the organisations listed."]
    elif role in organisation_needed_by:
        errors[organisation_field] = [
            "Advocates and partners belong to an organisation."
            if organisation_needed_by == ORGANISATION_NEEDED_BY_COMMAND
            else f"Choose the organisation this {ROLES[role].lower()} belongs to."]
    return organisation, errors


def create_user(email: str, name: str, role: str, password: str | None,
                organisation_name: str | None = None, *, organisation_id=None,
                organisation_needed_by=ORGANISATION_NEEDED_BY_COMMAND,
                organisation_field: str = "organisation",
                must_change_password: bool = False) -> User:
    """Create an account; partners and advocates belong to an organisation (every role but
    admin with `organisation_needed_by=ORGANISATION_NEEDED_BY_PAGES`). Without a password the
    account cannot log in until its user sets one (an invitation)."""
    errors: dict[str, list[str]] = {}
    email = (email or "").strip().lower()
    if "@" not in email or len(email) > 254:
        errors["email"] = ["Enter a valid email address."]
    elif find_user(email):
        errors["email"] = ["An account with this email already exists."]
    organisation, account_errors = validate_account(role, organisation_name, organisation_id,
                                                    organisation_needed_by, organisation_field)
    errors.update(account_errors)
    if password is not None:
        try:
            check_new_password(password, email=email, name=name or "")
        except ValidationFailed as error:
            errors.update(error.fields)
    if errors:
        raise ValidationFailed(errors)
    user = User(email=email, name=(name or "").strip() or email.split("@")[0], role=role,
                organisation=organisation, password_hash=_stored_password(password),
                must_change_password=must_change_password)
    db.session.add(user)
    db.session.flush()
    return user


def _stored_password(password: str | None) -> str:
    """The hash of the password; without one, the hash of a random secret nobody knows (the
    account cannot log in, and a login attempt costs the time a real one does)."""
    return hash_password(password if password is not None else secrets.token_urlsafe(32))


def temporary_password() -> str:
    """A random password to give a user once (about 79 bits), in groups of four."""
    characters = "".join(secrets.choice(_TEMPORARY_ALPHABET) for _ in range(16))
    return "-".join(characters[i:i + 4] for i in range(0, 16, 4))


def set_temporary_password(user: User) -> str:
    """Give the user a new temporary password they must change at their next login; end their
    sessions. Return the password (only its hash is stored)."""
    password = temporary_password()
    user.password_hash = hash_password(password)
    user.must_change_password = True
    end_all_sessions(user)
    revoke_all_tokens(user)
    return password


def clear_password(user: User) -> None:
    """Replace the password by one nobody knows (the user is invited to choose theirs); end
    every session."""
    user.password_hash = _stored_password(None)
    user.must_change_password = False
    end_all_sessions(user)
    revoke_all_tokens(user)


def authenticate(email: str, password: str) -> User | None:
    """Return the user when the account is active and the password is theirs; an unknown or
    inactive account costs the time a real check does. Throttling is the caller's (throttle.py:
    it needs the request)."""
    user = find_user(email or "")
    if user is None or not user.is_active:
        _spend_equal_time(password)
        return None
    if not password_matches(user, password or ""):
        return None
    user.last_login_at = utcnow()
    mfa.start_grace(user)
    return user


def _spend_equal_time(password: str) -> None:
    try:
        _hasher.verify(_dummy_hash(), password or "")
    except VerificationError:
        pass



def end_all_sessions(user: User) -> None:
    """Invalidate every session cookie issued to the user so far."""
    user.session_generation += 1


def change_password(user: User, current_password: str, new_password: str) -> None:
    problem = reentry_problem(user, current_password, "This is not your current password.")
    if problem:
        raise ValidationFailed({"current_password": [problem]})
    choose_password(user, new_password)


def choose_password(user: User, new_password: str, field: str = "new_password") -> None:
    """Set the password the user chose (after a temporary one, or from an invitation); end
    every session issued so far."""
    check_new_password(new_password, field, email=user.email, name=user.name)
    user.password_hash = hash_password(new_password)
    user.must_change_password = False
    end_all_sessions(user)
    revoke_all_tokens(user)


def regenerate_recovery_codes(user: User, password: str | None, code: str | None) -> list[str]:
    """New recovery codes in place of the old, after the password and a code."""
    if not user.mfa_enabled:
        raise Conflict("Two-step sign-in is not on.")
    errors = reentry_errors(user, password, code, "This is not your password.")
    if errors:
        raise ValidationFailed(errors, "Your recovery codes were not changed.")
    return mfa.regenerate_recovery_codes(user)


def switch_off_two_step(user: User, password: str | None, code: str | None) -> None:
    """The user stops using two-step sign-in (not if their role requires it)."""
    if mfa.required_of(user):
        raise Conflict(f"{ROLES[user.role]}s must use two-step sign-in: it stays on. Lost "
                       "your authenticator app? Sign in with a recovery code, or ask an "
                       "administrator to reset it.")
    if not user.mfa_enabled:
        raise Conflict("Two-step sign-in is not on.")
    errors = reentry_errors(user, password, code, "This is not your password.")
    if errors:
        raise ValidationFailed(errors, "Two-step sign-in is still on.")
    mfa.switch_off(user, Actor(user.id, user.email), "Two-step sign-in switched off by its user",
                   enrol_again=False)


def issue_token(user: User, name: str, expires_in_days: int | None = None) -> str:
    """Create an API token that expires (after `DEFAULT_TOKEN_DAYS` unless told, at most
    `MAX_TOKEN_DAYS`); only its hash is stored, so the token is shown once."""
    errors = {}
    if not (name or "").strip():
        errors["name"] = ["Give the token a name, e.g. the script that uses it."]
    days = DEFAULT_TOKEN_DAYS if expires_in_days is None else expires_in_days
    if not 1 <= days <= MAX_TOKEN_DAYS:
        errors["expires_in_days"] = [f"A token lasts from 1 to {MAX_TOKEN_DAYS} days."]
    if errors:
        raise ValidationFailed(errors)
    token = "gov_" + secrets.token_urlsafe(32)
    expires_at = utcnow() + timedelta(days=days)
    db.session.add(ApiToken(user_id=user.id, name=name.strip()[:100], prefix=token[:12],
                            token_hash=hash_token(token), expires_at=expires_at))
    db.session.flush()
    return token


def revoke_all_tokens(user: User) -> None:
    """Stop every live API token of the user (their password changed, or the account stopped):
    a token copied with the old password must not outlive it."""
    for api_token in db.session.scalars(select(ApiToken).where(
            ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))):
        api_token.revoked_at = utcnow()


def revoke_token(user: User, token_id: int) -> ApiToken:
    api_token = db.session.get(ApiToken, token_id)
    if api_token is None or api_token.user_id != user.id:
        raise NotFound("You have no token with this id.")
    if api_token.revoked_at is None:
        api_token.revoked_at = utcnow()
    return api_token


def note_token_use(token_id: int, last_used_at: datetime | None, now: datetime) -> bool:
    """Record that a token was used now, if its recorded use is older than the resolution;
    say whether it was recorded.

    The stamp is written in a short transaction of its own (the request's may only read) and
    changes neither the token's version nor its last change; it is usage, not an edit, so it is
    not audited. A database that refuses the write (read-only, full) fails the stamp only."""
    if last_used_at is not None and last_used_at > now - TOKEN_USE_RECORDED_EVERY:
        return False
    try:
        with writing(), db.engine.begin() as connection:
            connection.execute(update(ApiToken).where(ApiToken.id == token_id)
                               .values(last_used_at=now, updated_at=ApiToken.updated_at))
    except SQLAlchemyError as error:
        current_app.logger.warning("the use of API token %s was not recorded: %s", token_id,
                                   error)
        return False
    return True


def tokens_of(user: User) -> list[ApiToken]:
    return db.session.scalars(
        select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.created_at.desc())
    ).all()
