"""CSV import: each row goes through the same service as a form, then all rows are kept or none.

A run reads the stored file batch by batch. While no row has failed, each batch is saved through
the services, so flags are raised and audit events written exactly as for a form; once a row
fails the rest are only checked, so the report lists every row's problems. New interactions and
support lines go through their service's bulk path a batch at a time (validated as one row is,
written with one statement, audited in the same chain); the partnerships and agreements of new
support lines are re-checked once, after the last batch. A preview is such a run, always rolled
back; a commit is the same run, kept only if no row failed.

`external_id` identifies a row: importing a row whose external_id is already recorded updates
that record if a value differs (audited with the import as the reason) and leaves it alone if
nothing differs, so importing the same file twice changes nothing the second time.
"""

import gc
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import select

from .. import audit
from ..agreements import services as agreement_services
from ..agreements.models import Agreement
from ..errors import Conflict, DomainError, RowsInvalid
from ..extensions import db
from ..interactions import services as interaction_services
from ..interactions.models import Interaction
from ..organisations import services as organisation_services
from ..organisations.models import Organisation
from ..partnerships import services as partnership_services
from ..partnerships.models import Partnership, Support
from ..payments import services as payment_services
from ..payments.models import IndividualPayment
from ..permissions import (
    agreement_scope,
    can_edit_individual_payment,
    individual_payment_scope,
    interaction_scope,
    organisation_scope,
    partnership_scope,
    require,
)
from .csvfile import FileRefused, RowReader, check_header, decode, records

BATCH = 5000  # rows validated and written together
SAMPLE = 25  # rows shown in the preview
ROW = "(row)"
HINTS = {
    "Not a valid date.": "Not a valid date: use YYYY-MM-DD, e.g. 2025-03-14.",
    "Not a valid boolean.": "Not a valid yes/no value: use true or false.",
    "Not a valid integer.": "Not a whole number.",
}


@dataclass(frozen=True)
class Problem:
    row: int  # as a spreadsheet numbers it: the header is row 1
    column: str
    message: str


@dataclass(frozen=True)
class Outcome:
    row: int
    action: str  # created | updated | unchanged
    external_id: str
    label: str


@dataclass
class ImportReport:
    kind: str
    filename: str
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    problems: list[Problem] = field(default_factory=list)
    notices: list[Problem] = field(default_factory=list)
    sample: list[Outcome] = field(default_factory=list)
    committed: bool = False

    @property
    def ok(self) -> bool:
        return not self.problems

    def fail(self, row: int, errors: dict[str, list[str]]) -> None:
        for column, messages in errors.items():
            for message in messages:
                self.problems.append(Problem(row, ROW if column == "_schema" else column,
                                             HINTS.get(message, message)))

    def count(self, row: int, action: str, values: dict, label: str) -> None:
        setattr(self, action, getattr(self, action) + 1)
        if len(self.sample) < SAMPLE:
            self.sample.append(Outcome(row, action, values.get("external_id") or "",
                                       str(values.get(label) or "")))


def _same(old, new) -> bool:
    if isinstance(old, list | tuple) and isinstance(new, list | tuple):
        return sorted(map(str, old)) == sorted(map(str, new))
    if isinstance(old, Decimal) and isinstance(new, Decimal):
        return old == new
    return old == new


class Importer:
    """How one kind of record is found, checked, created and updated through its service."""

    name: str
    label: str
    schema: type
    model: type
    label_field: str
    list_endpoint: str
    example: dict

    def __init__(self, actor, reason: str):
        self.actor = actor
        self.reason = reason

    @classmethod
    def columns(cls) -> tuple[str, ...]:
        return tuple(cls.schema().fields)

    @classmethod
    def required_columns(cls) -> set[str]:
        return {name for name, f in cls.schema().fields.items() if f.required} | {"external_id"}

    # -- what each kind provides --------------------------------------------------------------

    def visible(self):
        """SQL condition: the records of this kind the actor may see (and so update)."""
        raise NotImplementedError

    def values_of(self, record) -> dict:
        raise NotImplementedError

    def check_new(self, values: dict) -> None:
        raise NotImplementedError

    def check_existing(self, record, values: dict) -> dict:
        raise NotImplementedError

    def create(self, values: dict) -> None:
        raise NotImplementedError

    def update(self, record, values: dict) -> None:
        raise NotImplementedError

    def finish(self) -> None:
        """After the last batch, when every row was saved: what is done once per import."""

    # -- shared -------------------------------------------------------------------------------

    def existing(self, batch, report: ImportReport) -> tuple[dict[str, object], set[str]]:
        """Records already holding the batch's external_ids; ids the actor may not see fail."""
        wanted = [values["external_id"] for _row, values in batch]
        model = self.model
        found = {record.external_id: record for record in db.session.scalars(
            select(model).where(model.external_id.in_(wanted), self.visible()))}
        hidden = set(db.session.scalars(
            select(model.external_id).where(model.external_id.in_(wanted)))) - set(found)
        for row, values in batch:
            if values["external_id"] in hidden:
                report.fail(row, {"external_id": [
                    "This external_id belongs to a record you may not see or change."]})
        return found, hidden

    def run_batch(self, batch, report: ImportReport) -> None:
        found, hidden = self.existing(batch, report)
        for row, values in batch:
            if values["external_id"] in hidden:
                continue
            record = found.get(values["external_id"])
            try:
                action = self._apply(record, values, writing=report.ok)
            except DomainError as error:
                report.fail(row, error.fields or {ROW: [error.message]})
                continue
            report.count(row, action, values, self.label_field)

    def _apply(self, record, values: dict, writing: bool) -> str:
        if record is None:
            if writing:
                self.create(values)
            else:
                self.check_new(values)
            return "created"
        current = self.values_of(record)
        clean = self.check_existing(record, current | values)
        if all(_same(current.get(name), value) for name, value in clean.items()):
            return "unchanged"
        if writing:
            self.update(record, values)
        return "updated"


class BulkImporter(Importer):
    """New records go through their service's bulk path a batch at a time (each row validated
    as the service validates one, all written with one statement and evaluated together);
    existing ones one by one. `preloaded` holds what the rows refer to, with the external_ids
    already taken."""

    preloaded: object

    def check_all_new(self, rows: list[dict]) -> dict[int, dict[str, list[str]]]:
        """Each bad row's errors by index."""
        raise NotImplementedError

    def create_all(self, rows: list[dict]) -> None:
        """Save the rows, or raise RowsInvalid and save none."""
        raise NotImplementedError

    def existing(self, batch, report):
        known = [(row, values) for row, values in batch
                 if values["external_id"] in self.preloaded.external_ids]
        return super().existing(known, report) if known else ({}, set())

    def run_batch(self, batch, report):
        found, hidden = self.existing(batch, report)
        fresh = []
        for row, values in batch:
            if values["external_id"] in hidden:
                continue
            record = found.get(values["external_id"])
            if record is None:
                fresh.append((row, values))
                continue
            try:
                action = self._apply(record, values, writing=report.ok)
            except DomainError as error:
                report.fail(row, error.fields or {ROW: [error.message]})
                continue
            report.count(row, action, values, self.label_field)
        if fresh:
            self._create_all(fresh, report)

    def _create_all(self, fresh, report):
        rows = [values for _row, values in fresh]
        if report.ok:
            try:
                self.create_all(rows)
            except RowsInvalid as error:
                errors = error.rows
            else:
                errors = {}
        else:
            errors = self.check_all_new(rows)
        for index, (row, values) in enumerate(fresh):
            if index in errors:
                report.fail(row, errors[index])
            else:
                report.count(row, "created", values, self.label_field)


class OrganisationImporter(Importer):
    name = "organisations"
    label = "Organisations"
    schema = organisation_services.OrganisationInput
    model = Organisation
    label_field = "name"
    list_endpoint = "organisations.index"
    example = {"name": "Rare Lung Alliance", "kind": "patient_group", "country": "GB",
               "website": "https://rarelung.example.org",
               "disease_areas": ["pulmonary fibrosis", "sarcoidosis"],
               "annual_income": "420000.00", "income_currency": "GBP",
               "methodology_note": None, "external_id": "CRM-ORG-0001"}

    def visible(self):
        return organisation_scope(self.actor)

    def values_of(self, record):
        return organisation_services.organisation_values(record)

    def check_new(self, values):
        organisation_services.validate_organisation(values)

    def check_existing(self, record, values):
        return organisation_services.validate_organisation(values, record)

    def create(self, values):
        organisation_services.create_organisation(values, self.actor)

    def update(self, record, values):
        organisation_services.update_organisation(record, values, self.actor, reason=self.reason)


class PartnershipImporter(Importer):
    name = "partnerships"
    label = "Partnerships"
    schema = partnership_services.PartnershipInput
    model = Partnership
    label_field = "title"
    list_endpoint = "partnerships.index"
    example = {"title": "Trial design advisory programme", "sponsor_id": 1,
               "patient_group_id": 4, "kind": "experiential", "status": "active",
               "started_on": "2025-01-01", "ended_on": None, "agreement_signed_on": "2024-12-10",
               "ip_terms_agreed": False,
               "data_sharing_terms": "Aggregate findings only; no personal data leaves the group.",
               "independence_measures": "The group sets the agenda and chairs every meeting.",
               "policy_reference": "SOP-PE-004 v2", "evaluation": None,
               "other_organisation_ids": [], "external_id": "CRM-PART-0001"}

    def visible(self):
        return partnership_scope(self.actor)

    def values_of(self, record):
        return partnership_services.partnership_values(record)

    def check_new(self, values):
        partnership_services.validate_partnership(values, self.actor)

    def check_existing(self, record, values):
        return partnership_services.validate_partnership(values, self.actor, record)

    def create(self, values):
        partnership_services.create_partnership(values, self.actor)

    def update(self, record, values):
        partnership_services.update_partnership(record, values, self.actor, reason=self.reason)


class SupportImporter(BulkImporter):
    name = "supports"
    label = "Support (transfers of value)"
    schema = partnership_services.SupportInput
    model = Support
    label_field = "description"
    list_endpoint = "partnerships.supports"
    example = {"partnership_id": 1, "recipient_id": 4, "paid_on": "2025-02-01",
               "kind": "grant", "amount": "12500.00", "currency": "GBP",
               "description": "Grant towards the annual patient conference",
               "external_id": "CRM-SUP-0001", "agreement_id": 1}

    def __init__(self, actor, reason):
        super().__init__(actor, reason)
        self.preloaded = partnership_services.SupportPreloaded.for_actor(actor)
        self.recorded: set[int] = set()  # partnerships of new lines, re-checked at the end

    def visible(self):
        return Support.partnership_id.in_(select(Partnership.id).where(
            partnership_scope(self.actor)))

    def values_of(self, record):
        return partnership_services.support_values(record)

    def check_existing(self, record, values):
        return partnership_services.validate_support(values, self.actor, record, self.preloaded)

    def update(self, record, values):
        partnership_services.update_support(record, values, self.actor, reason=self.reason)

    def check_all_new(self, rows):
        return partnership_services.validate_supports(rows, self.actor, self.preloaded)[1]

    def create_all(self, rows):
        partnership_services.record_supports(rows, self.actor, self.preloaded, self.recorded)

    def finish(self):
        partnership_services.after_lines_recorded(self.recorded)


class AgreementImporter(Importer):
    name = "agreements"
    label = "Agreements (written agreements behind support)"
    schema = agreement_services.AgreementInput
    model = Agreement
    label_field = "objective"
    list_endpoint = "partnerships.index"
    example = {"partnership_id": 1, "kind": "grant",
               "objective": "Grant towards the annual patient conference",
               "parties_and_roles": "The sponsor funds; the patient group organises",
               "starts_on": "2025-01-01", "ends_on": "2025-12-31", "amount": "12500.00",
               "currency": "GBP", "signed_on": "2024-12-10",
               "signatories": "Sponsor's CFO; the group's chair", "external_id": "CRM-AGR-0001"}

    def visible(self):
        return agreement_scope(self.actor)

    def values_of(self, record):
        return agreement_services.agreement_values(record)

    def check_new(self, values):
        agreement_services.validate_agreement(values, self.actor)

    def check_existing(self, record, values):
        return agreement_services.validate_agreement(values, self.actor, record)

    def create(self, values):
        agreement_services.record_agreement(values, self.actor)

    def update(self, record, values):
        agreement_services.update_agreement(record, values, self.actor, reason=self.reason)


class PaymentImporter(Importer):
    """Payments to individuals (issue #18). The payments service checks every row as it checks
    a form: the payee reference must be a pseudonym, the interaction and the agreement must be
    open to the importer, and each saved payment is checked against the rate card."""

    name = "payments"
    label = "Payments to individuals"
    schema = payment_services.IndividualPaymentInput
    model = IndividualPayment
    label_field = "payee_reference"
    list_endpoint = "payments.index"
    example = {"organisation_id": None, "interaction_id": 1, "payee_reference": "P-0042",
               "payee_kind": "patient", "service": "advisory_board", "hours": "4",
               "fee": "600.00", "expenses": "85.40", "currency": "GBP",
               "paid_on": "2025-03-20", "agreement_id": 1, "external_id": "CRM-PAY-0001"}

    def visible(self):
        return individual_payment_scope(self.actor)

    def values_of(self, record):
        return payment_services.payment_values(record)

    def check_new(self, values):
        payment_services.validate_payment(values, self.actor)

    def check_existing(self, record, values):
        clean = payment_services.validate_payment(values, self.actor, record)
        current = payment_services.payment_values(record)
        if not all(_same(current.get(name), value) for name, value in clean.items()):
            # What update_payment would refuse, refused in the preview too.
            require(can_edit_individual_payment, self.actor, record)
            if record.is_void:
                raise Conflict("This payment has been voided and can no longer be edited.")
        return clean

    def create(self, values):
        payment_services.record_payment(values, self.actor)

    def update(self, record, values):
        payment_services.update_payment(record, values, self.actor, reason=self.reason)


class InteractionImporter(BulkImporter):
    name = "interactions"
    label = "Interactions"
    schema = interaction_services.InteractionInput
    model = Interaction
    label_field = "title"
    list_endpoint = "interactions.index"
    example = {
        "title": "Advisory board on trial burden", "occurred_on": "2025-03-14",
        "format": "advisory_board", "partnership_id": 1, "organisation_id": None,
        "activity_codes": ["TD-01", "TD-04"], "patient_needs": ["practicality"],
        "external_id": "CRM-INT-0001",
        "purpose": "Review the visit schedule of the phase 2 protocol for participant burden "
                   "and travel needs",
        "purpose_shared_on": "2025-02-28", "product_specific": False, "product": None,
        "lifecycle_stage": "phase_2", "expected_approval_on": None, "approved_on": None,
        "patient_participants": 6, "caregiver_participants": 2, "sponsor_staff": 3,
        "selection_method": "co_created_procedure",
        "stages_represented": ["early", "intermediate", "late"], "stages_in_scope": ["all"],
        "preparation_offered": True,
        "protocol_followed": True, "materials_co_created": True, "roles_agreed": True,
        "facilitator": "third_party",
        "modality": "in_person", "venue_type": "neutral_venue",
        "venue_agreed_by_patients": True, "accessibility_reviewed": True,
        "accommodations": ["step_free_access", "travel_support"],
        "summary": "Participants asked for fewer site visits; the team will pilot home nursing.",
        "summary_recorded_on": "2025-03-20", "outcomes_shared_on": "2025-04-10",
        "outcome_changes": "Home nursing visits were added to the protocol.", "status": "held",
    }

    def __init__(self, actor, reason):
        super().__init__(actor, reason)
        self.preloaded = interaction_services.Preloaded.for_actor(actor)

    def visible(self):
        return interaction_scope(self.actor)

    def values_of(self, record):
        return interaction_services.interaction_values(record)

    def check_existing(self, record, values):
        return interaction_services.validate_interaction(values, self.actor, self.preloaded)

    def update(self, record, values):
        interaction_services.update_interaction(record, values, self.actor, reason=self.reason)

    def check_all_new(self, rows):
        return interaction_services.validate_interactions(rows, self.actor, self.preloaded)[1]

    def create_all(self, rows):
        interaction_services.log_interactions(rows, self.actor, self.preloaded)


IMPORTERS: dict[str, type[Importer]] = {
    importer.name: importer
    for importer in (InteractionImporter, OrganisationImporter, PartnershipImporter,
                     SupportImporter, AgreementImporter, PaymentImporter)
}


def import_file(kind: str, data: bytes, actor, *, filename: str, digest: str,
                commit: bool) -> ImportReport:
    """Check (and, with commit, save) every row of a CSV file in one transaction.

    Without commit, or when any row fails, everything is rolled back: nothing is half-written.
    Raises FileRefused when the file as a whole cannot be read.
    """
    importer_class = IMPORTERS[kind]
    report = ImportReport(kind=kind, filename=filename)
    rows = records(decode(data))
    header = next(rows, None)
    if header is None:
        raise FileRefused("The file is empty.")
    names = check_header(header[1], importer_class.columns(), importer_class.required_columns())
    reader = RowReader(names, importer_class.schema())
    reason = f"CSV import of {filename} (sha256 {digest[:12]}…)"
    # The objects that exist before the import (the app, its modules, the session) need no
    # collecting; leaving them out of the collector's scans makes a large import much faster.
    gc.freeze()
    try:
        audit.set_actor(actor)
        audit.set_reason(reason)
        importer = importer_class(actor, reason)
        seen: dict[str, int] = {}
        batch = []
        for number, cells in rows:
            if not any(cell.strip() for cell in cells):
                continue
            report.rows += 1
            values = _read_row(number, cells, reader, report, seen)
            if values is not None:
                batch.append((number, values))
            if len(batch) >= BATCH:
                importer.run_batch(batch, report)
                batch = []
        if batch:
            importer.run_batch(batch, report)
        if report.rows == 0:
            raise FileRefused("The file has a header but no rows to import.")
        if report.ok:
            importer.finish()
        if commit and report.ok:
            db.session.commit()
            report.committed = True
        else:
            db.session.rollback()
    except BaseException:
        db.session.rollback()
        raise
    finally:
        gc.unfreeze()
    return report


def _read_row(number, cells, reader: RowReader, report: ImportReport, seen: dict) -> dict | None:
    width = len(reader.names)
    if len(cells) > width and any(cell.strip() for cell in cells[width:]):
        report.fail(number, {ROW: [f"This row has {len(cells)} cells but the header has "
                                   f"{width} columns."]})
        return None
    values = reader.values(cells)
    for name in reader.formula_columns(cells):
        report.notices.append(Problem(number, name, "Starts like a spreadsheet formula; it "
                                      "is kept as plain text and exports neutralise it."))
    external_id = values.get("external_id")
    if not external_id:
        report.fail(number, {"external_id": [
            "Give every row an external_id: it identifies the row, so importing the file again "
            "updates the record instead of adding a duplicate."]})
        return None
    if external_id in seen:
        report.fail(number, {"external_id": [f"Row {seen[external_id]} already has this "
                                             "external_id."]})
        return None
    seen[external_id] = number
    return values
