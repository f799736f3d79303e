from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import Boolean, Enum, ForeignKey, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from ..organisations.models import Organisation
from ..records import Record
from ..vocabulary import ROLES


class User(Record, UserMixin, db.Model):
    __tablename__ = "users"
    __audit_exclude__ = Record.__audit_exclude__ | {"last_login_at", "first_sign_in_at",
                                                    "mfa_last_step"}
    __audit_redact__ = frozenset({"password_hash", "mfa_secret", "mfa_recovery_hashes"})

    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(
        Enum(*ROLES, name="user_role", native_enum=False, create_constraint=True)
    )
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"))
    password_hash: Mapped[str] = mapped_column(String(255))
    # Bumped on logout and password change: every session cookie issued before stops working.
    session_generation: Mapped[int] = mapped_column(default=1)
    last_login_at: Mapped[datetime | None]
    # The grace to set up two-step sign-in (MFA_ENROLMENT_GRACE_DAYS) counts from here.
    first_sign_in_at: Mapped[datetime | None]
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Set with a temporary password an administrator gave: the user chooses their own first.
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False,
                                                       server_default=false())
    # Two-step sign-in (auth/mfa.py): the TOTP secret (base32; kept while set-up waits for its
    # first code), when it was switched on, the last time step accepted (a code works once),
    # the SHA-256 of each unused recovery code (space-separated), and whether the user must
    # set it up before anything else (after an administrator reset it).
    mfa_secret: Mapped[str | None] = mapped_column(String(32))
    mfa_enabled_at: Mapped[datetime | None]
    mfa_last_step: Mapped[int | None]
    mfa_recovery_hashes: Mapped[str | None] = mapped_column(Text)
    must_enrol_mfa: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    organisation: Mapped[Organisation | None] = relationship()

    def get_id(self) -> str:
        return f"{self.id}:{self.session_generation}"

    @property
    def mfa_enabled(self) -> bool:
        return self.mfa_enabled_at is not None

    @property
    def is_active(self) -> bool:
        return self.active and not self.is_void

    def __str__(self) -> str:
        return self.name


class AuditorGrant(Record, db.Model):
    """A further organisation an auditor may read (an external auditor of that organisation);
    voided when the grant ends."""

    __tablename__ = "auditor_grants"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))

    organisation: Mapped[Organisation] = relationship()


class ApiToken(Record, db.Model):
    __tablename__ = "api_tokens"
    __audit_exclude__ = Record.__audit_exclude__ | {"last_used_at"}

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(12))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]

    user: Mapped[User] = relationship()
