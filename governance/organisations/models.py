from decimal import Decimal

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Enum,
    ForeignKey,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from ..records import Record
from ..vocabulary import ORGANISATION_KINDS


class Organisation(Record, db.Model):
    __tablename__ = "organisations"

    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(
        Enum(*ORGANISATION_KINDS, name="organisation_kind", native_enum=False,
             create_constraint=True)
    )
    country: Mapped[str | None] = mapped_column(String(2))
    website: Mapped[str | None] = mapped_column(String(300))
    disease_areas: Mapped[list] = mapped_column(JSON, default=list)
    annual_income: Mapped[Decimal | None] = mapped_column(Numeric(16, 2))
    income_currency: Mapped[str | None] = mapped_column(String(3))
    methodology_note: Mapped[str | None] = mapped_column(Text)
    # The report's branding, set by a compliance officer: a logo (stored by its SHA-256) and
    # a colour (#rrggbb).
    logo_sha256: Mapped[str | None] = mapped_column(String(64))
    logo_media_type: Mapped[str | None] = mapped_column(String(40))
    brand_colour: Mapped[str | None] = mapped_column(String(7))
    external_id: Mapped[str | None] = mapped_column(String(100), unique=True)
    # The organisation of the user who added it: its people see it before any partnership
    # with it exists (see permissions.organisation_scope).
    added_by_organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"))
    # A patient group's own industry policy: the most one company may give of its industry
    # support and of its income in a year (%); where set, PART-CONCENTRATION uses it instead of
    # the policy's defaults for this group.
    own_support_cap_pct: Mapped[Decimal | None] = mapped_column(Numeric(5, 2))
    own_income_cap_pct: Mapped[Decimal | None] = mapped_column(Numeric(5, 2))

    def __str__(self) -> str:
        return self.name


class GroupYearlyFigures(Record, db.Model):
    """A patient group's own figures for one calendar year (e.g. from its published accounts):
    the industry support it received and its income. PART-CONCENTRATION measures a sponsor's
    share against them, and against the support recorded here only where they are missing."""

    __tablename__ = "group_yearly_figures"

    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    year: Mapped[int]
    industry_support: Mapped[Decimal | None] = mapped_column(Numeric(16, 2))
    income: Mapped[Decimal | None] = mapped_column(Numeric(16, 2))
    currency: Mapped[str] = mapped_column(String(3))
    source: Mapped[str] = mapped_column(String(300))

    organisation: Mapped[Organisation] = relationship()

    __table_args__ = (
        UniqueConstraint("organisation_id", "year",
                         name="uq_group_yearly_figures_organisation_year"),
        CheckConstraint("industry_support IS NULL OR industry_support >= 0",
                        name="industry_support_not_negative"),
        CheckConstraint("income IS NULL OR income >= 0", name="income_not_negative"),
    )

    def __str__(self) -> str:
        return f"{self.year} figures of organisation {self.organisation_id}"
