from datetime import date
from decimal import Decimal

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    Enum,
    ForeignKey,
    Numeric,
    String,
    Table,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from ..organisations.models import Organisation
from ..records import Record
from ..vocabulary import CONFIRMATION_STATES, PARTNERSHIP_KINDS, PARTNERSHIP_STATUSES, SUPPORT_KINDS

partnership_members = Table(
    "partnership_members",
    db.metadata,
    Column("partnership_id", ForeignKey("partnerships.id"), primary_key=True),
    Column("organisation_id", ForeignKey("organisations.id"), primary_key=True),
)


class Partnership(Record, db.Model):
    __tablename__ = "partnerships"
    __audit_collections__ = frozenset({"other_organisations"})

    title: Mapped[str] = mapped_column(String(200))
    sponsor_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    patient_group_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    kind: Mapped[str] = mapped_column(
        Enum(*PARTNERSHIP_KINDS, name="partnership_kind", native_enum=False,
             create_constraint=True)
    )
    status: Mapped[str] = mapped_column(
        Enum(*PARTNERSHIP_STATUSES, name="partnership_status", native_enum=False,
             create_constraint=True),
        default="proposed",
    )
    started_on: Mapped[date | None]
    ended_on: Mapped[date | None]
    agreement_signed_on: Mapped[date | None]
    ip_terms_agreed: Mapped[bool] = mapped_column(Boolean, default=False)
    data_sharing_terms: Mapped[str | None] = mapped_column(Text)
    independence_measures: Mapped[str | None] = mapped_column(Text)
    policy_reference: Mapped[str | None] = mapped_column(String(300))
    evaluation: Mapped[str | None] = mapped_column(Text)
    external_id: Mapped[str | None] = mapped_column(String(100), unique=True)

    sponsor: Mapped[Organisation] = relationship(foreign_keys=[sponsor_id])
    patient_group: Mapped[Organisation] = relationship(foreign_keys=[patient_group_id])
    other_organisations: Mapped[list[Organisation]] = relationship(secondary=partnership_members)
    supports: Mapped[list["Support"]] = relationship(
        back_populates="partnership", order_by="Support.paid_on"
    )

    __table_args__ = (
        CheckConstraint("ended_on IS NULL OR started_on IS NULL OR ended_on >= started_on",
                        name="ended_after_started"),
        CheckConstraint("sponsor_id <> patient_group_id", name="two_parties"),
    )

    @property
    def organisation_ids(self) -> set[int]:
        return {self.sponsor_id, self.patient_group_id} | {o.id for o in self.other_organisations}

    def __str__(self) -> str:
        return self.title


class Support(Record, db.Model):
    __tablename__ = "supports"

    partnership_id: Mapped[int] = mapped_column(ForeignKey("partnerships.id"), index=True)
    recipient_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    paid_on: Mapped[date] = mapped_column(index=True)
    kind: Mapped[str] = mapped_column(
        Enum(*SUPPORT_KINDS, name="support_kind", native_enum=False, create_constraint=True)
    )
    amount: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    currency: Mapped[str] = mapped_column(String(3))
    description: Mapped[str] = mapped_column(Text)
    confirmed_by_partner: Mapped[str] = mapped_column(
        Enum(*CONFIRMATION_STATES, name="confirmation_state", native_enum=False,
             create_constraint=True),
        default="pending",
    )
    confirmation_note: Mapped[str | None] = mapped_column(Text)
    # Why the reporting side kept the line unchanged after the partner's dispute ("upheld").
    dispute_answer: Mapped[str | None] = mapped_column(Text)
    external_id: Mapped[str | None] = mapped_column(String(100), unique=True)
    # The written agreement it is paid under (governance/agreements).
    agreement_id: Mapped[int | None] = mapped_column(ForeignKey("agreements.id"), index=True)

    partnership: Mapped[Partnership] = relationship(back_populates="supports")
    recipient: Mapped[Organisation] = relationship()
    agreement = relationship("Agreement")

    __table_args__ = (
        CheckConstraint("amount IS NULL OR amount >= 0", name="amount_not_negative"),
    )

    def __str__(self) -> str:
        value = f"{self.currency} {self.amount:,.2f}" if self.amount is not None else "unvalued"
        return f"{SUPPORT_KINDS.get(self.kind, self.kind)} of {value} on {self.paid_on}"


# The agreements support is paid under: imported last, as it refers to Partnership.
from ..agreements.models import Agreement  # noqa: E402, F401
