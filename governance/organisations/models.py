from decimal import Decimal

from sqlalchemy import JSON, Enum, ForeignKey, Numeric, String, Text
from sqlalchemy.orm import Mapped, mapped_column

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

    def __str__(self) -> str:
        return self.name
