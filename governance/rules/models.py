from datetime import date, datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..database import utcnow
from ..extensions import db
from ..jobs import Job
from ..records import Record, vocab_enum
from ..vocabulary import (
    DIMENSIONS,
    FLAG_STATES,
    POLICY_ORIGINS,
    POLICY_VERSION_STATES,
    REEVALUATION_STATES,
    SEVERITIES,
)

# A flag judges one record: exactly one of its subject columns is set.
FLAG_SUBJECT_COLUMNS = ("interaction_id", "partnership_id", "individual_payment_id",
                        "agreement_id")
EXACTLY_ONE_SUBJECT = " + ".join(f"(CASE WHEN {column} IS NULL THEN 0 ELSE 1 END)"
                                 for column in FLAG_SUBJECT_COLUMNS) + " = 1"


class Flag(Record, db.Model):
    """A poor practice found by a policy rule on an interaction, a partnership or an agreement."""

    __tablename__ = "flags"

    interaction_id: Mapped[int | None] = mapped_column(ForeignKey("interactions.id"), index=True)
    partnership_id: Mapped[int | None] = mapped_column(ForeignKey("partnerships.id"), index=True)
    # A fee or expenses paid to a member of the public (governance/payments).
    individual_payment_id: Mapped[int | None] = mapped_column(
        ForeignKey("individual_payments.id"), index=True)
    # The agreement-level rules (AGR-*) flag the written agreement itself (governance/agreements).
    agreement_id: Mapped[int | None] = mapped_column(ForeignKey("agreements.id"), index=True)
    rule_id: Mapped[str] = mapped_column(String(60), index=True)
    dimension: Mapped[str] = mapped_column(vocab_enum(DIMENSIONS, "flag_dimension"))
    severity: Mapped[str] = mapped_column(vocab_enum(SEVERITIES, "flag_severity"))
    state: Mapped[str] = mapped_column(vocab_enum(FLAG_STATES, "flag_state"), default="open")
    message: Mapped[str] = mapped_column(Text)
    # The version of the policy set that raised the flag, and the one in force when it closed
    # (an acknowledged or dismissed flag is not raised again under that same version).
    policy_version: Mapped[str] = mapped_column(String(40))
    resolved_policy_version: Mapped[str | None] = mapped_column(String(40))
    note: Mapped[str | None] = mapped_column(Text)
    resolved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    resolved_at: Mapped[datetime | None]
    raised_at: Mapped[datetime] = mapped_column(default=utcnow)

    interaction = relationship("Interaction")
    partnership = relationship("Partnership")
    individual_payment = relationship("IndividualPayment")
    agreement = relationship("Agreement")
    resolved_by = relationship("User")

    __table_args__ = (
        CheckConstraint(EXACTLY_ONE_SUBJECT, name="exactly_one_subject"),
        # The queue, the dashboard and the API filter by state first (and dimension).
        Index("ix_flags_state_dimension", "state", "dimension"),
        # The interaction list filtered by rule and state reads the ids from the index alone.
        Index("ix_flags_live_rule_state_interaction", "rule_id", "state", "interaction_id",
              sqlite_where=text("voided_at IS NULL"), postgresql_where=text("voided_at IS NULL")),
    )

    @property
    def is_open(self) -> bool:
        return self.state == "open"

    @property
    def subject(self) -> str:
        if self.individual_payment_id is not None:
            return "individual_payment"
        if self.agreement_id is not None:
            return "agreement"
        return "interaction" if self.interaction_id is not None else "partnership"

    def __str__(self) -> str:
        return f"{self.rule_id} ({self.state})"


class ReevaluationRun(Record, Job, db.Model):
    """A re-evaluation of every record asked for from the review queue, run in the background.

    Its state lives in the database so any worker can show its progress; the flags it changes
    are audited as the `reevaluate` command's are."""

    __tablename__ = "reevaluation_runs"
    __audit_exclude__ = Record.__audit_exclude__ | Job.UNAUDITED

    requested_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    state: Mapped[str] = mapped_column(vocab_enum(REEVALUATION_STATES, "reevaluation_state"),
                                       default="queued", index=True)
    policy_version: Mapped[str | None] = mapped_column(String(40))
    summary: Mapped[str | None] = mapped_column(Text)

    requested_by = relationship("User")

    __table_args__ = (
        CheckConstraint("progress BETWEEN 0 AND 100", name="progress_is_a_percentage"),
    )


class PolicyVersion(Record, db.Model):
    """One version of the policy set, kept byte for byte with its SHA-256: the shipped file's
    (kept here once it is signed off or built upon) or one proposed in the application.

    A proposed version is checked like the file, signed off by patient partners and put in
    force by compliance from a date; its content never changes afterwards."""

    __tablename__ = "policy_versions"

    policy_version: Mapped[str] = mapped_column(String(40), unique=True)
    origin: Mapped[str] = mapped_column(vocab_enum(POLICY_ORIGINS, "policy_origin"))
    state: Mapped[str] = mapped_column(vocab_enum(POLICY_VERSION_STATES, "policy_version_state"),
                                       default="proposed", index=True)
    source: Mapped[str] = mapped_column(Text)  # the TOML text, as checked
    digest: Mapped[str] = mapped_column(String(64))  # SHA-256 of the source's UTF-8 bytes
    based_on: Mapped[str | None] = mapped_column(String(40))  # the version it changes
    summary: Mapped[str | None] = mapped_column(Text)  # what changed, in the proposer's words
    effective_from: Mapped[date | None]  # set when it is put in force
    proposed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    put_in_force_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    put_in_force_at: Mapped[datetime | None]
    withdrawal_reason: Mapped[str | None] = mapped_column(Text)

    proposed_by = relationship("User", foreign_keys=[proposed_by_id])
    put_in_force_by = relationship("User", foreign_keys=[put_in_force_by_id])
    sign_offs: Mapped[list["PolicySignOff"]] = relationship(
        back_populates="policy", order_by="PolicySignOff.signed_at",
        primaryjoin="and_(PolicySignOff.policy_id == PolicyVersion.id, "
                    "PolicySignOff.voided_at.is_(None))", viewonly=True)

    __table_args__ = (
        CheckConstraint("state != 'in_force' OR effective_from IS NOT NULL",
                        name="in_force_has_a_date"),
    )

    def __str__(self) -> str:
        return f"policy v{self.policy_version}"


class PolicySignOff(Record, db.Model):
    """A patient partner's electronic signature on a policy version: who, for which
    organisation, when (UTC) and what the signature means."""

    __tablename__ = "policy_sign_offs"

    policy_id: Mapped[int] = mapped_column(ForeignKey("policy_versions.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"))
    meaning: Mapped[str] = mapped_column(Text)
    signed_at: Mapped[datetime] = mapped_column(default=utcnow)

    policy: Mapped[PolicyVersion] = relationship(back_populates="sign_offs")
    user = relationship("User")
    organisation = relationship("Organisation")

    __table_args__ = (UniqueConstraint("policy_id", "user_id", name="uq_policy_sign_offs_user"),)


# The individual payments flags judge: imported here, as Flag refers to them by name.
from ..payments.models import IndividualPayment  # noqa: E402, F401
