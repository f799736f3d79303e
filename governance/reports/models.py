from datetime import datetime

from sqlalchemy import JSON, CheckConstraint, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from ..jobs import Job
from ..organisations.models import Organisation
from ..records import Record, vocab_enum
from ..vocabulary import REPORT_JOBS, REPORT_STATUSES

ARTEFACTS = ("pdf", "csv", "json")
# The public disclosure (the files at the old addresses) and the internal governance report.
DOCUMENTS = ("public", "internal")
ALL_COUNTRIES = "all"


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
    # Which recipients it covers: "all", or those of one country (a national disclosure).
    country_scope: Mapped[str] = mapped_column(String(3), default=ALL_COUNTRIES)
    # An optional currency every total is also given in, at rates compliance entered
    # ({"USD": "0.790000"}: one US dollar is 0.79 of the reporting currency).
    reporting_currency: Mapped[str | None] = mapped_column(String(3))
    exchange_rates: Mapped[dict | None] = mapped_column(JSON)

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
    internal_page_count: Mapped[int | None]
    internal_pdf_sha256: Mapped[str | None] = mapped_column(String(64))
    internal_csv_sha256: Mapped[str | None] = mapped_column(String(64))
    internal_json_sha256: Mapped[str | None] = mapped_column(String(64))
    internal_pdf_size: Mapped[int | None]
    internal_csv_size: Mapped[int | None]
    internal_json_size: Mapped[int | None]

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
        UniqueConstraint("organisation_id", "year", "country_scope", "revision",
                         name="uq_reports_revision"),
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

    @staticmethod
    def _column(document: str, kind: str, what: str) -> str:
        return f"{kind}_{what}" if document == "public" else f"{document}_{kind}_{what}"

    def sha256_of(self, kind: str, document: str = "public") -> str | None:
        return getattr(self, self._column(document, kind, "sha256"))

    def size_of(self, kind: str, document: str = "public") -> int | None:
        return getattr(self, self._column(document, kind, "size"))

    def keep_file(self, document: str, kind: str, sha256: str, size: int) -> None:
        setattr(self, self._column(document, kind, "sha256"), sha256)
        setattr(self, self._column(document, kind, "size"), size)

    @property
    def snapshot_sha256(self) -> str | None:
        """The frozen snapshot both documents are drawn from: the internal JSON."""
        return self.internal_json_sha256 or self.json_sha256

    @property
    def is_national(self) -> bool:
        return self.country_scope != ALL_COUNTRIES

    @property
    def stable_id(self) -> str:
        return f"report-{self.id}"

    def file_name(self, kind: str, document: str = "public") -> str:
        slug = "".join(c if c.isalnum() else "-" for c in self.organisation.name.lower())
        slug = "-".join(part for part in slug.split("-") if part)[:60] or "organisation"
        state = "" if self.is_published else "-draft"
        scope = f"-{self.country_scope.lower()}" if self.is_national else ""
        name = "transparency-report" if document == "public" else "internal-governance-report"
        return f"{name}-{slug}-{self.year}{scope}-v{self.revision}{state}.{kind}"

    def __str__(self) -> str:
        scope = f" ({self.country_scope})" if self.is_national else ""
        return f"Transparency report {self.year}{scope}, version {self.revision}"


def side_of(organisation: Organisation) -> str:
    """What an organisation's report discloses: the support it gave (a sponsor, or any
    organisation other than a patient group) or the industry funding it received (a patient
    group, from the lines it confirmed: ABPI's guidance for patient organisations)."""
    return "received" if organisation.kind == "patient_group" else "given"
