from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from ..jobs import Job
from ..organisations.models import Organisation
from ..records import Record, vocab_enum
from ..vocabulary import REPORT_JOBS, REPORT_STATUSES

ARTEFACTS = ("pdf", "csv", "json")


class Report(Record, Job, db.Model):
    """One version of an organisation's annual transparency report, and the job that makes it.

    The job's state lives here, in the database, so any worker process can show its progress.
    Generated files are stored by their SHA-256 (see storage.py); once published, the row's hashes
    never change and a correction is a new row with the next `revision`.
    """

    __tablename__ = "reports"
    __audit_exclude__ = Record.__audit_exclude__ | Job.UNAUDITED
    JOB_STATE = "status"

    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    year: Mapped[int] = mapped_column(index=True)
    # The report's own version number (1, 2 for a correction, …); Record.version is the row lock.
    revision: Mapped[int] = mapped_column(default=1)
    corrects_id: Mapped[int | None] = mapped_column(ForeignKey("reports.id"))
    correction_reason: Mapped[str | None] = mapped_column(Text)

    # The job
    job: Mapped[str] = mapped_column(vocab_enum(REPORT_JOBS, "report_job"), default="generate")
    status: Mapped[str] = mapped_column(vocab_enum(REPORT_STATUSES, "report_status"),
                                        default="queued", index=True)
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    # What was generated (the draft, then the published files)
    generated_at: Mapped[datetime | None]
    methodology_note: Mapped[str | None] = mapped_column(Text)
    page_count: Mapped[int | None]
    pdf_sha256: Mapped[str | None] = mapped_column(String(64))
    csv_sha256: Mapped[str | None] = mapped_column(String(64))
    json_sha256: Mapped[str | None] = mapped_column(String(64))
    pdf_size: Mapped[int | None]
    csv_size: Mapped[int | None]
    json_size: Mapped[int | None]

    # The publisher's electronic signature
    signed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    signature_name: Mapped[str | None] = mapped_column(String(200))
    signature_meaning: Mapped[str | None] = mapped_column(Text)
    signed_at: Mapped[datetime | None]
    published_at: Mapped[datetime | None]

    organisation: Mapped[Organisation] = relationship()
    corrects: Mapped["Report | None"] = relationship(remote_side="Report.id")
    requested_by = relationship("User", foreign_keys=[requested_by_id])
    signed_by = relationship("User", foreign_keys=[signed_by_id])

    __table_args__ = (
        UniqueConstraint("organisation_id", "year", "revision", name="uq_reports_revision"),
        CheckConstraint("progress BETWEEN 0 AND 100", name="progress_in_range"),
        CheckConstraint("year BETWEEN 1900 AND 2999", name="year_in_range"),
        CheckConstraint("revision >= 1", name="revision_positive"),
    )

    @property
    def is_published(self) -> bool:
        return self.status == "published"

    @property
    def has_files(self) -> bool:
        return self.status in ("done", "published") and self.pdf_sha256 is not None

    def sha256_of(self, kind: str) -> str | None:
        return getattr(self, f"{kind}_sha256")

    def size_of(self, kind: str) -> int | None:
        return getattr(self, f"{kind}_size")

    @property
    def stable_id(self) -> str:
        return f"report-{self.id}"

    def file_name(self, kind: str) -> str:
        slug = "".join(c if c.isalnum() else "-" for c in self.organisation.name.lower())
        slug = "-".join(part for part in slug.split("-") if part)[:60] or "organisation"
        state = "" if self.is_published else "-draft"
        return f"transparency-report-{slug}-{self.year}-v{self.revision}{state}.{kind}"

    def __str__(self) -> str:
        return f"Transparency report {self.year}, version {self.revision}"
