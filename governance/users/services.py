"""Administer user accounts: list, create (with an invitation link or a temporary password),
change role and organisations, deactivate and reactivate; accept an invitation."""

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import func, select

from .. import audit
from ..auth import mfa
from ..auth import services as accounts
from ..auth.models import AuditorGrant, User
from ..auth.tokens import hash_token
from ..database import utcnow
from ..errors import Conflict, DomainError, NotFound, ValidationFailed
from ..extensions import db
from ..organisations.models import Organisation
from ..pagination import Page
from ..permissions import can_manage_users, require
from ..records import refuse_stale
from .models import Invitation

# How a new user signs in the first time.
ACCESS_METHODS = {
    "invitation": "An invitation link: they choose their password (the link expires)",
    "password": "A temporary password: they must change it when they first log in",
}
CHANGEABLE = ("name", "role", "organisation_id", "granted_organisation_ids")


class InvitationClosed(DomainError):
    """The invitation link was used, has expired or was replaced."""

    status = 410


@dataclass(frozen=True)
class NewAccess:
    """What an administrator hands a user once: a temporary password or an invitation token
    (neither is stored, only their hashes)."""

    user: User
    password: str | None = None
    invitation_token: str | None = None
    expires_at: datetime | None = None


# --- listing ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class UserFilter:
    role: str | None = None
    organisation_id: int | None = None
    active: bool | None = None
    page: int = 1
    per_page: int = 25


def find_users(criteria: UserFilter, actor) -> Page:
    """Return one page of the accounts that match the criteria, by name."""
    require(can_manage_users, actor)
    conditions = [User.voided_at.is_(None)]
    if criteria.role:
        conditions.append(User.role == criteria.role)
    if criteria.organisation_id:
        granted = select(AuditorGrant.user_id).where(
            AuditorGrant.organisation_id == criteria.organisation_id,
            AuditorGrant.voided_at.is_(None))
        conditions.append((User.organisation_id == criteria.organisation_id)
                          | User.id.in_(granted))
    if criteria.active is not None:
        conditions.append(User.active.is_(criteria.active))
    total = db.session.scalar(select(func.count()).select_from(User).where(*conditions))
    items = db.session.scalars(
        select(User).where(*conditions).order_by(func.lower(User.name), User.id)
        .limit(criteria.per_page).offset((criteria.page - 1) * criteria.per_page)
    ).all()
    return Page(items, total, criteria.page, criteria.per_page)


def granted_organisations(user_ids) -> dict[int, list[Organisation]]:
    """The further organisations each auditor is granted, by name."""
    found: dict[int, list[Organisation]] = {}
    if not user_ids:
        return found
    rows = db.session.execute(
        select(AuditorGrant.user_id, Organisation)
        .join(Organisation, Organisation.id == AuditorGrant.organisation_id)
        .where(AuditorGrant.user_id.in_(user_ids), AuditorGrant.voided_at.is_(None))
        .order_by(Organisation.name)
    ).all()
    for user_id, organisation in rows:
        found.setdefault(user_id, []).append(organisation)
    return found


def latest_invitations(user_ids) -> dict:
    """Each user's latest invitation that was not replaced, if any."""
    found = {}
    if not user_ids:
        return found
    for invitation in db.session.scalars(
            select(Invitation).where(Invitation.user_id.in_(user_ids),
                                     Invitation.voided_at.is_(None))
            .order_by(Invitation.created_at, Invitation.id)):
        found[invitation.user_id] = invitation
    return found


def account_state(user: User, invitation=None, now: datetime | None = None) -> str:
    """How the account stands, in a few words."""
    now = now or utcnow()
    if not user.active:
        return "Deactivated"
    if invitation is not None and invitation.accepted_at is None:
        if invitation.expires_at > now:
            return "Invited (no password yet)"
        return "Invitation expired"
    if user.must_change_password:
        return "Active (temporary password)"
    if user.must_enrol_mfa:
        return "Active (sets up two-step sign-in at next sign-in)"
    return "Active"


# --- creating and changing -------------------------------------------------------------------


def create_account(values: dict, actor) -> NewAccess:
    """Create an account with a role and organisation (and, for an auditor, further
    organisations); hand out an invitation link or a temporary password."""
    require(can_manage_users, actor)
    audit.set_actor(actor)
    access = values.get("access")
    role = values.get("role")
    errors: dict[str, list[str]] = {}
    if access not in ACCESS_METHODS:
        errors["access"] = ["Choose how the user signs in the first time."]
    granted, grant_errors = _check_grants(role, values.get("organisation_id"),
                                          values.get("granted_organisation_ids") or [])
    errors.update(grant_errors)
    password = accounts.temporary_password() if access == "password" else None
    try:
        user = accounts.create_user(
            values.get("email"), values.get("name"), role, password,
            organisation_id=values.get("organisation_id"),
            organisation_needed_by=accounts.ORGANISATION_NEEDED_BY_PAGES,
            organisation_field="organisation_id", must_change_password=password is not None)
    except ValidationFailed as error:
        raise ValidationFailed(errors | error.fields) from None
    if errors:
        raise ValidationFailed(errors)
    audit.set_reason(f"Account created by an administrator, with "
                     f"{'a temporary password' if password else 'an invitation link'}")
    _set_grants(user, granted)
    if password is not None:
        return NewAccess(user, password=password)
    token, invitation = _invite(user)
    return NewAccess(user, invitation_token=token, expires_at=invitation.expires_at)


def change_account(user: User, values: dict, actor, reason: str | None = None,
                   expected_version: int | None = None) -> User:
    """Change an account's name, role, organisation and (for an auditor) further
    organisations; the last active administrator stays one."""
    require(can_manage_users, actor)
    refuse_stale(user, expected_version, "account")
    unknown = set(values) - set(CHANGEABLE)
    if unknown:
        raise ValidationFailed({name: ["Unknown field."] for name in sorted(unknown)})
    role = values.get("role", user.role)
    organisation_id = values.get("organisation_id", user.organisation_id)
    organisation, errors = accounts.validate_account(
        role, organisation_id=organisation_id,
        organisation_needed_by=accounts.ORGANISATION_NEEDED_BY_PAGES,
        organisation_field="organisation_id")
    name = (values.get("name", user.name) or "").strip()
    if not name:
        errors["name"] = ["Give the user's name."]
    elif len(name) > 200:
        errors["name"] = ["Use at most 200 characters."]
    requested = values.get("granted_organisation_ids")
    if requested is None:
        requested = [grant.organisation_id for grant in _live_grants(user)] \
            if role == "auditor" else []
    granted, grant_errors = _check_grants(role, organisation_id, requested)
    errors.update(grant_errors)
    if user.role == "admin" and role != "admin" and _is_last_active_admin(user):
        errors["role"] = [f"{user.name} is the last active administrator: make another user "
                          "an administrator first, so someone can still manage users."]
    if errors:
        raise ValidationFailed(errors)
    audit.set_actor(actor)
    audit.set_reason(reason)
    if user.name != name:
        user.name = name
    if user.role != role:
        user.role = role
    if user.organisation_id != (organisation.id if organisation else None):
        user.organisation = organisation
    _set_grants(user, granted, reason)
    db.session.flush()
    return user


def deactivate_account(user: User, actor, reason: str) -> User:
    """Stop an account at once: its sessions end, its API tokens and invitation stop working."""
    require(can_manage_users, actor)
    if not (reason or "").strip():
        raise ValidationFailed({"reason": ["Say why this account is being deactivated."]})
    if not user.active:
        raise Conflict(f"{user.name}'s account is already deactivated.")
    if user.role == "admin" and _is_last_active_admin(user):
        raise DomainError(f"{user.name} is the last active administrator and cannot be "
                          "deactivated: make another user an administrator first, so someone "
                          "can still manage users.")
    audit.set_actor(actor)
    audit.set_reason(reason.strip())
    user.active = False
    accounts.end_all_sessions(user)
    accounts.revoke_all_tokens(user)
    _close_invitations(user, "Account deactivated")
    db.session.flush()
    return user


def reactivate_account(user: User, actor, reason: str | None = None) -> User:
    """Let a deactivated account log in again (with the password it had)."""
    require(can_manage_users, actor)
    if user.active:
        raise Conflict(f"{user.name}'s account is already active.")
    audit.set_actor(actor)
    audit.set_reason((reason or "").strip() or "Account reactivated")
    user.active = True
    db.session.flush()
    return user


def renew_access(user: User, actor, access: str) -> NewAccess:
    """Hand out a new invitation link or temporary password (a forgotten password, an expired
    link); what was handed out before stops working, and so do the user's sessions."""
    require(can_manage_users, actor)
    if access not in ACCESS_METHODS:
        raise ValidationFailed({"access": ["Choose how the user signs in next."]})
    if not user.active:
        raise Conflict(f"{user.name}'s account is deactivated: reactivate it first.")
    audit.set_actor(actor)
    audit.set_reason(f"New {'temporary password' if access == 'password' else 'invitation'} "
                     "handed out by an administrator")
    _close_invitations(user, "Replaced by new access")
    if access == "password":
        password = accounts.set_temporary_password(user)
        db.session.flush()
        return NewAccess(user, password=password)
    accounts.clear_password(user)
    token, invitation = _invite(user)
    return NewAccess(user, invitation_token=token, expires_at=invitation.expires_at)


def reset_two_step(user: User, actor, reason: str) -> User:
    """Forget the user's authenticator app and recovery codes (a lost phone): they set up
    two-step sign-in again at their next sign-in; their sessions end, their API tokens stay."""
    require(can_manage_users, actor)
    if not (reason or "").strip():
        raise ValidationFailed({"reason": ["Say why two-step sign-in is reset."]})
    mfa.switch_off(user, audit.Actor(actor.id, actor.email),
                   f"Two-step sign-in reset by an administrator: {reason.strip()}",
                   enrol_again=True)
    return user


def _is_last_active_admin(user: User) -> bool:
    others = db.session.scalar(
        select(func.count()).select_from(User).where(
            User.role == "admin", User.active.is_(True), User.voided_at.is_(None),
            User.id != user.id))
    return user.active and not others


def _live_grants(user: User) -> list[AuditorGrant]:
    if user.id is None:
        return []
    return db.session.scalars(
        select(AuditorGrant).where(AuditorGrant.user_id == user.id,
                                   AuditorGrant.voided_at.is_(None))).all()


def _check_grants(role, organisation_id, requested) -> tuple[set[int], dict]:
    """The organisations an auditor is to be granted beyond their own, and the problems."""
    wanted = set(requested) - {organisation_id}
    if not wanted:
        return set(), {}
    if role != "auditor":
        return set(), {"granted_organisation_ids": [
            "Only auditors are granted further organisations: clear these or make the user an "
            "auditor."]}
    found = set(db.session.scalars(
        select(Organisation.id).where(Organisation.id.in_([i for i in wanted
                                                           if isinstance(i, int)]),
                                      Organisation.voided_at.is_(None))).all())
    if found != wanted:
        return set(), {"granted_organisation_ids": ["Choose among the organisations listed."]}
    return wanted, {}


def _set_grants(user: User, organisation_ids: set[int], reason: str | None = None) -> None:
    """Grant what is newly wanted; void the grants no longer wanted (the grant ends)."""
    live = {grant.organisation_id: grant for grant in _live_grants(user)}
    now = utcnow()
    for organisation_id, grant in live.items():
        if organisation_id not in organisation_ids:
            grant.voided_at = now
            grant.void_reason = (reason or "").strip() or "Grant ended by an administrator"
    for organisation_id in sorted(organisation_ids - set(live)):
        db.session.add(AuditorGrant(user_id=user.id, organisation_id=organisation_id))
    db.session.flush()


# --- invitations -----------------------------------------------------------------------------


def _invite(user: User):
    token = secrets.token_urlsafe(32)
    days = current_app.config["INVITATION_VALID_DAYS"]
    invitation = Invitation(user_id=user.id, token_hash=hash_token(token),
                            expires_at=utcnow() + timedelta(days=days))
    db.session.add(invitation)
    db.session.flush()
    return token, invitation


def _close_invitations(user: User, why: str) -> None:
    now = utcnow()
    for invitation in db.session.scalars(
            select(Invitation).where(Invitation.user_id == user.id,
                                     Invitation.voided_at.is_(None),
                                     Invitation.accepted_at.is_(None))):
        invitation.voided_at = now
        invitation.void_reason = why


def open_invitation(token: str):
    """The invitation a link carries, if it can still be accepted; else say why not."""
    invitation = db.session.scalar(
        select(Invitation).where(Invitation.token_hash == hash_token(token or "")))
    if invitation is None:
        raise NotFound("This invitation link is not valid. Check that you opened the whole "
                       "link, or ask your administrator for a new one.")
    if invitation.accepted_at is not None:
        raise InvitationClosed("This invitation link has already been used to set a password. "
                               "Log in with that password, or ask your administrator for a "
                               "new link.")
    if invitation.is_void or not invitation.user.is_active:
        raise InvitationClosed("This invitation link no longer works: it was replaced or the "
                               "account was deactivated. Ask your administrator for a new "
                               "one.")
    if invitation.expires_at <= utcnow():
        raise InvitationClosed("This invitation link has expired. Ask your administrator for a "
                               "new one.")
    return invitation


def accept_invitation(token: str, password: str) -> User:
    """Set the invited user's password from their link; the link then stops working."""
    invitation = open_invitation(token)
    user = invitation.user
    audit.set_actor(user)
    audit.set_reason("Invitation accepted: password chosen")
    accounts.choose_password(user, password, "password")
    invitation.accepted_at = utcnow()
    db.session.flush()
    return user

