from datetime import datetime

from sqlalchemy import (
    JSON,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from ..organisations.models import Organisation
from ..partnerships.models import Partnership
from ..records import Record, vocab_enum
from ..vocabulary import EXERCISE_STATUSES, PRIORITISATION_SIDES, RATING_LEVELS


class CustomActivity(Record, db.Model):
    """An activity an organisation added itself; catalogue updates never touch it."""

    __tablename__ = "custom_activities"

    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    code: Mapped[str] = mapped_column(String(24), unique=True)  # ORG<organisation id>-NN
    stage: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text)
    example: Mapped[str | None] = mapped_column(Text)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    organisation: Mapped[Organisation] = relationship()

    __table_args__ = (CheckConstraint("code LIKE 'ORG%'", name="custom_code_namespaced"),)

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class PrioritisationExercise(Record, db.Model):
    """One side's named prioritisation of engagement activities (CTTI method): for a
    partnership (one per study or programme), or an organisation's own before any partnership,
    to decide what to seek and what it can offer; an own exercise can later join a partnership
    the organisation is a party to."""

    __tablename__ = "prioritisation_exercises"

    partnership_id: Mapped[int | None] = mapped_column(ForeignKey("partnerships.id"),
                                                       index=True)
    name: Mapped[str] = mapped_column(String(200))  # the study or programme it is for
    side: Mapped[str] = mapped_column(vocab_enum(PRIORITISATION_SIDES, "prioritisation_side"))
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    status: Mapped[str] = mapped_column(vocab_enum(EXERCISE_STATUSES, "exercise_status"),
                                        default="draft")
    step: Mapped[int] = mapped_column(default=1)  # the furthest step reached, to resume at
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    completed_at: Mapped[datetime | None]
    completed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    partnership: Mapped[Partnership | None] = relationship()
    organisation: Mapped[Organisation] = relationship()
    ratings: Mapped[list["ActivityRating"]] = relationship(
        back_populates="exercise", order_by="ActivityRating.activity_code"
    )

    __table_args__ = (
        # A name is unique among a partnership side's live exercises, and among an
        # organisation's own live ones (the services compare names ignoring case).
        Index("uq_prioritisation_exercises_live_name", "partnership_id", "side", "name",
              unique=True, sqlite_where=text("voided_at IS NULL"),
              postgresql_where=text("voided_at IS NULL")),
        Index("uq_prioritisation_exercises_own_name", "organisation_id", "name", unique=True,
              sqlite_where=text("partnership_id IS NULL AND voided_at IS NULL"),
              postgresql_where=text("partnership_id IS NULL AND voided_at IS NULL")),
        CheckConstraint("step BETWEEN 1 AND 3", name="step_in_range"),
    )

    def __str__(self) -> str:
        return self.name

    @property
    def is_own(self) -> bool:
        """The organisation's own exercise, not (yet) part of a partnership."""
        return self.partnership_id is None

    @property
    def is_completed(self) -> bool:
        return self.status == "completed"

    @property
    def selected(self) -> list["ActivityRating"]:
        """The ratings of the activities currently selected (withdrawn ones are void)."""
        return [rating for rating in self.ratings if not rating.is_void]


class ActivityRating(Record, db.Model):
    """How one side rates one activity: benefit and investment, the factors, the reasons."""

    __tablename__ = "activity_ratings"

    exercise_id: Mapped[int] = mapped_column(ForeignKey("prioritisation_exercises.id"),
                                             index=True)
    activity_code: Mapped[str] = mapped_column(String(24), index=True)
    benefit: Mapped[str | None] = mapped_column(vocab_enum(RATING_LEVELS, "benefit_level"))
    investment: Mapped[str | None] = mapped_column(vocab_enum(RATING_LEVELS, "investment_level"))
    benefit_factors: Mapped[list] = mapped_column(JSON, default=list)
    investment_factors: Mapped[list] = mapped_column(JSON, default=list)
    rationale: Mapped[str | None] = mapped_column(Text)
    implementation_notes: Mapped[str | None] = mapped_column(Text)

    exercise: Mapped[PrioritisationExercise] = relationship(back_populates="ratings")

    __table_args__ = (
        UniqueConstraint("exercise_id", "activity_code", name="uq_activity_ratings_activity"),
    )

    @property
    def is_rated(self) -> bool:
        return self.benefit is not None and self.investment is not None
