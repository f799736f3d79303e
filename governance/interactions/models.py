from datetime import date

from sqlalchemy import JSON, Boolean, CheckConstraint, ForeignKey, Index, String, Text, false, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from ..organisations.models import Organisation
from ..partnerships.models import Partnership
from ..records import Record, vocab_enum
from ..review.models import PlanApproval, SignOff
from ..vocabulary import (
    CONFIRMATION_STATES,
    FACILITATORS,
    INTERACTION_FORMATS,
    INTERACTION_STATUSES,
    LIFECYCLE_STAGES,
    MODALITIES,
    SELECTION_METHODS,
    VENUE_TYPES,
)


class Interaction(SignOff, PlanApproval, Record, db.Model):
    __tablename__ = "interactions"

    # General
    title: Mapped[str] = mapped_column(String(200))
    occurred_on: Mapped[date]  # indexed below, for the live (not voided) interactions
    format: Mapped[str] = mapped_column(vocab_enum(INTERACTION_FORMATS, "interaction_format"))
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    activity_codes: Mapped[list] = mapped_column(JSON, default=list)
    patient_needs: Mapped[list] = mapped_column(JSON, default=list)
    external_id: Mapped[str | None] = mapped_column(String(100), unique=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # Planned, then held (or cancelled); a record logged after the fact is held.
    status: Mapped[str] = mapped_column(vocab_enum(INTERACTION_STATUSES, "interaction_status"),
                                        default="held", server_default="held")
    # Whether the title may appear in the public disclosure (titles may name unlicensed
    # products; by default they stay in the internal report).
    publishable: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    # WHAT the relationship
    partnership_id: Mapped[int | None] = mapped_column(ForeignKey("partnerships.id"))

    # WHY the purpose
    purpose: Mapped[str | None] = mapped_column(Text)
    purpose_shared_on: Mapped[date | None]
    product_specific: Mapped[bool] = mapped_column(Boolean, default=False)
    product: Mapped[str | None] = mapped_column(String(200))

    # WHEN the timing
    lifecycle_stage: Mapped[str | None] = mapped_column(
        vocab_enum(LIFECYCLE_STAGES, "lifecycle_stage")
    )
    expected_approval_on: Mapped[date | None]
    approved_on: Mapped[date | None]

    # WHO the participants
    patient_participants: Mapped[int] = mapped_column(default=0)
    caregiver_participants: Mapped[int] = mapped_column(default=0)
    sponsor_staff: Mapped[int] = mapped_column(default=0)
    selection_method: Mapped[str | None] = mapped_column(
        vocab_enum(SELECTION_METHODS, "selection_method")
    )
    stages_represented: Mapped[list] = mapped_column(JSON, default=list)
    stages_in_scope: Mapped[list] = mapped_column(JSON, default=list)
    # PFMD "capacity and capability": preparation or training offered to the patients taking part.
    preparation_offered: Mapped[bool] = mapped_column(Boolean, default=False,
                                                      server_default=false())

    # HOW the structure
    protocol_followed: Mapped[bool] = mapped_column(Boolean, default=False)
    materials_co_created: Mapped[bool] = mapped_column(Boolean, default=False)
    facilitator: Mapped[str | None] = mapped_column(vocab_enum(FACILITATORS, "facilitator"))
    modality: Mapped[str | None] = mapped_column(vocab_enum(MODALITIES, "modality"))
    # PFMD "roles and responsibilities": the patients' and the sponsor's roles agreed beforehand.
    roles_agreed: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    # WHERE the venue
    venue_type: Mapped[str | None] = mapped_column(vocab_enum(VENUE_TYPES, "venue_type"))
    venue_agreed_by_patients: Mapped[bool] = mapped_column(Boolean, default=False)
    accessibility_reviewed: Mapped[bool] = mapped_column(Boolean, default=False)
    accommodations: Mapped[list] = mapped_column(JSON, default=list)

    # Documentation
    summary: Mapped[str | None] = mapped_column(Text)
    summary_recorded_on: Mapped[date | None]
    outcomes_shared_on: Mapped[date | None]
    outcome_changes: Mapped[str | None] = mapped_column(Text)  # "you said, we did"

    # The partner's answer
    confirmed_by_partner: Mapped[str] = mapped_column(
        vocab_enum(CONFIRMATION_STATES, "interaction_confirmation_state"), default="pending"
    )
    confirmation_note: Mapped[str | None] = mapped_column(Text)
    # Why the holder kept the record unchanged after the partner's dispute ("upheld").
    dispute_answer: Mapped[str | None] = mapped_column(Text)

    partnership: Mapped[Partnership | None] = relationship()
    organisation: Mapped[Organisation] = relationship()

    __table_args__ = (
        CheckConstraint("patient_participants >= 0", name="patient_participants_not_negative"),
        CheckConstraint("caregiver_participants >= 0",
                        name="caregiver_participants_not_negative"),
        CheckConstraint("sponsor_staff >= 0", name="sponsor_staff_not_negative"),
        # One partnership's or one organisation's interactions in date order (list filters,
        # reports, the rules' yearly counts) without sorting them.
        Index("ix_interactions_partnership_id_occurred_on", "partnership_id", "occurred_on"),
        Index("ix_interactions_organisation_id_occurred_on", "organisation_id", "occurred_on"),
        # The list page walks the live interactions in the order it shows them and checks who
        # may see each from the index alone (bench/suite.py: the list page at 1,000,000
        # interactions); every query by date is of live interactions.
        Index("ix_interactions_live_by_date", "occurred_on", "id", "organisation_id",
              "partnership_id", sqlite_where=text("voided_at IS NULL"),
              postgresql_where=text("voided_at IS NULL")),
        Index("ix_interactions_live_by_title", "title", "id", sqlite_where=text(
            "voided_at IS NULL"), postgresql_where=text("voided_at IS NULL")),
        Index("ix_interactions_live_by_format", "format", "id", sqlite_where=text(
            "voided_at IS NULL"), postgresql_where=text("voided_at IS NULL")),
    )

    def __str__(self) -> str:
        return self.title
