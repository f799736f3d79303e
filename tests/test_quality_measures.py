"""Quality of engagement beyond flags (issue #21): lifecycle stages, first engagement, patient
needs, "you said, we did", roles agreed and preparation offered; on the compliance and auditor
homes (the user's organisation only) and frozen in the internal governance report (never in the
public disclosure); the two new interaction fields through the form, the API and the CSV import.
"""

import csv
import io
import json
from datetime import date, timedelta

import pytest
from sqlalchemy import or_, select

from governance.audit import AuditEvent
from governance.database import utcnow
from governance.extensions import db
from governance.interactions import services as interactions
from governance.interactions.models import Interaction
from governance.quality.measures import year_measures
from governance.reports import services as reports
from governance.reports.models import Report
from governance.storage import REPORTS as files
from governance.transfer.imports import IMPORTERS

from .conftest import GOOD_INTERACTION
from .test_import import commit, csv_bytes, upload
from .test_interactions import form_data
from .test_query_count import counted_statements
from .test_reports import YEAR as REPORT_YEAR
from .test_reports import generate, pdf_text, publish

API = "/api/v1"
SHARED_CHANGE = "Home nursing visits replaced two of the site visits."
UNSHARED_CHANGE = "Travel is now booked and paid in advance."
OTHER_SPONSOR_CHANGE = "Northwind moved its board to a neutral venue."


@pytest.fixture
def app_config():
    return {"JOBS_INLINE": True}


@pytest.fixture
def engagement(make_org, sponsor, patient_group, make_partnership, make_interaction,
               compliance_user):
    """A sponsor's year of interactions in two partnerships, with one held two years earlier,
    one planned, one voided; and another sponsor's interaction that it must never count."""

    def make(year: int) -> dict:
        second_group = make_org("Parkinson's Voices", "patient_group", country="IE")
        other_sponsor = make_org("Northwind Therapeutics", "sponsor", country="US")
        other_group = make_org("Sickle Cell Collective", "patient_group", country="US")
        lung = make_partnership("Trial design advisory programme",
                                started_on=date(year - 3, 1, 1))
        voices = make_partnership("Patient-preference study", patient_group_id=second_group.id,
                                  started_on=date(year - 1, 1, 1))
        northwind = make_partnership("Northwind access programme", sponsor_id=other_sponsor.id,
                                     patient_group_id=other_group.id,
                                     started_on=date(year - 1, 1, 1))

        def held(partnership, on, **values):
            return make_interaction(partnership_id=partnership.id, occurred_on=on, **values)

        earliest = held(lung, date(year - 2, 3, 1), title="Kick-off with the alliance",
                        lifecycle_stage="discovery")
        shared = held(lung, date(year, 2, 10), title="Workshop on visit burden",
                      patient_needs=["clinical_benefit", "practicality"], roles_agreed=True,
                      preparation_offered=True, outcome_changes=SHARED_CHANGE)
        unshared = held(lung, date(year, 3, 5), title="Focus group on travel",
                        patient_needs=["practicality"], roles_agreed=True,
                        outcome_changes=UNSHARED_CHANGE, outcomes_shared_on=None)
        held(lung, date(year, 4, 2), title="Workshop on retention", lifecycle_stage="phase_3")
        held(lung, date(year, 5, 1), title="Planned listening session", status="planned",
             lifecycle_stage="phase_1", roles_agreed=True, summary=None,
             summary_recorded_on=None, outcomes_shared_on=None)
        voided = held(lung, date(year, 6, 1), title="Logged twice", lifecycle_stage="preclinical",
                      roles_agreed=True)
        interactions.void_interaction(voided, compliance_user, "Logged twice by mistake")
        held(voices, date(year, 7, 2), title="Preference survey workshop", lifecycle_stage=None,
             patient_needs=["commitment_contribution"], roles_agreed=True,
             preparation_offered=True)
        make_interaction(partnership_id=northwind.id, organisation_id=other_sponsor.id,
                         occurred_on=date(year, 8, 3), title="Northwind board",
                         lifecycle_stage="phase_1", patient_needs=["wellness"],
                         roles_agreed=True, preparation_offered=True,
                         outcome_changes=OTHER_SPONSOR_CHANGE)
        db.session.commit()
        return {"lung": lung, "voices": voices, "northwind": northwind,
                "earliest": earliest, "shared": shared, "unshared": unshared,
                "other_sponsor": other_sponsor}

    return make


def sponsor_measures(sponsor, year: int) -> dict:
    """The measures of the interactions a sponsor's report covers (held by it or within its
    partnerships)."""
    from governance.partnerships.models import Partnership

    sponsor_id = sponsor if isinstance(sponsor, int) else sponsor.id
    of_sponsor = or_(Interaction.organisation_id == sponsor_id,
                     Interaction.partnership_id.in_(
                         select(Partnership.id).where(Partnership.sponsor_id == sponsor_id)))
    return year_measures([of_sponsor], year)


# --- the measures ---------------------------------------------------------------------------


def test_held_interactions_are_counted_per_lifecycle_stage_listing_empty_stages(
        engagement, sponsor):
    engagement(REPORT_YEAR)
    measures = sponsor_measures(sponsor, REPORT_YEAR)
    stages = [(row["stage"], row["interactions"]) for row in measures["lifecycle_stages"]]
    # Every stage in lifecycle order, then those not recorded; planned, voided, other years'
    # and the other sponsor's interactions are not counted.
    assert stages == [("pre_discovery", 0), ("discovery", 0), ("preclinical", 0),
                      ("phase_1", 0), ("phase_2", 2), ("phase_3", 1),
                      ("regulatory_review", 0), ("post_approval", 0), (None, 1)]
    assert measures["held"] == 4


def test_each_partnership_first_engages_at_the_stage_of_its_earliest_held_interaction(
        engagement, sponsor):
    made = engagement(REPORT_YEAR)
    first = sponsor_measures(sponsor, REPORT_YEAR)["first_engagement"]
    assert [(row["partnership"]["title"], row["stage"], row["first_held_on"])
            for row in first] == [
        ("Patient-preference study", None, f"{REPORT_YEAR}-07-02"),
        ("Trial design advisory programme", "discovery", made["earliest"].occurred_on.isoformat()),
    ]


def test_needs_served_are_counted_and_those_no_interaction_served_are_named(engagement,
                                                                           sponsor):
    engagement(REPORT_YEAR)
    needs = sponsor_measures(sponsor, REPORT_YEAR)["patient_needs"]
    assert {row["need"]: row["interactions"] for row in needs["by_need"]} == {
        "clinical_benefit": 1, "wellness": 0, "practicality": 2, "commitment_contribution": 1}
    # Only the other sponsor's interaction served wellness: for this sponsor none did.
    assert needs["not_served"] == ["wellness"]
    assert needs["interactions_without_needs"] == 1


def test_you_said_we_did_lists_each_change_and_counts_shared_and_not_shared(engagement,
                                                                          sponsor):
    made = engagement(REPORT_YEAR)
    said = sponsor_measures(sponsor, REPORT_YEAR)["you_said_we_did"]
    assert (said["recorded"], said["shared_back"], said["not_shared_back"]) == (2, 1, 1)
    assert [(line["interaction"], line["what_changed"], line["shared_back_on"])
            for line in said["lines"]] == [
        (f"interaction-{made['shared'].id}", SHARED_CHANGE,
         made["shared"].outcomes_shared_on.isoformat()),
        (f"interaction-{made['unshared'].id}", UNSHARED_CHANGE, None),
    ]
    assert said["lines_not_listed"] == 0


def test_roles_agreed_and_preparation_offered_are_shares_of_held_interactions(engagement,
                                                                            sponsor):
    engagement(REPORT_YEAR)
    practices = {row["practice"]: row for row in
                 sponsor_measures(sponsor, REPORT_YEAR)["practices"]}
    assert (practices["roles_agreed"]["interactions"], practices["roles_agreed"]["held"],
            practices["roles_agreed"]["rate"]) == (3, 4, "0.7500")
    assert (practices["preparation_offered"]["interactions"],
            practices["preparation_offered"]["rate"]) == (2, "0.5000")


def test_a_year_without_interactions_says_so_rather_than_dividing_by_zero(sponsor):
    measures = sponsor_measures(sponsor, REPORT_YEAR)
    assert measures["held"] == 0
    assert all(row["interactions"] == 0 for row in measures["lifecycle_stages"])
    assert measures["patient_needs"]["not_served"] == ["clinical_benefit", "wellness",
                                                       "practicality", "commitment_contribution"]
    assert [row["rate"] for row in measures["practices"]] == [None, None]


def test_the_measures_take_three_statements_however_many_interactions(
        engagement, sponsor, make_interaction):
    made = engagement(REPORT_YEAR)
    sponsor_id = sponsor.id
    with counted_statements() as few:
        sponsor_measures(sponsor_id, REPORT_YEAR)
    for day in range(20):
        make_interaction(partnership_id=made["lung"].id, title=f"Workshop {day}",
                         occurred_on=date(REPORT_YEAR, 9, 1) + timedelta(days=day),
                         outcome_changes=f"Change {day}")
    with counted_statements() as many:
        measures = sponsor_measures(sponsor_id, REPORT_YEAR)
    assert measures["you_said_we_did"]["recorded"] == 22
    selects = [[s for s in run if s.lstrip().upper().startswith("SELECT")] for run in (few, many)]
    assert len(selects[0]) == len(selects[1]) == 3


# --- the two new fields through every door ----------------------------------------------------


def test_the_form_records_roles_agreed_and_preparation_offered_and_the_page_shows_them(
        client, log_in, make_user, sponsor, make_partnership):
    partnership = make_partnership()
    log_in(make_user("advocate", sponsor))
    page = client.get("/interactions/new").get_data(as_text=True)
    assert "Roles and responsibilities were agreed beforehand" in page
    assert "Preparation or training was offered to the patients taking part" in page
    response = client.post("/interactions/new", data=form_data(
        partnership_id=partnership.id, roles_agreed="y", preparation_offered="y"))
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    interaction = db.session.scalars(select(Interaction)).one()
    assert interaction.roles_agreed is True and interaction.preparation_offered is True
    shown = client.get(f"/interactions/{interaction.id}").get_data(as_text=True)
    assert "Roles and responsibilities were agreed beforehand" in shown

    # Unticking a box on the edit form records that it was not done, and is audited.
    response = client.post(f"/interactions/{interaction.id}/edit", data=form_data(
        partnership_id=partnership.id, roles_agreed="y", version=interaction.version))
    assert response.status_code == 302
    db.session.expire_all()
    edited = db.session.get(Interaction, interaction.id)
    assert edited.roles_agreed is True and edited.preparation_offered is False
    change = db.session.scalars(select(AuditEvent).where(
        AuditEvent.entity == "interaction", AuditEvent.entity_id == interaction.id,
        AuditEvent.action == "update")).one()
    assert "preparation_offered" in json.dumps(change.changes)


def test_the_api_takes_and_gives_both_fields_and_refuses_a_bad_value_naming_it(
        client, make_user, sponsor, make_partnership, bearer):
    partnership = make_partnership()
    headers = bearer(make_user("advocate", sponsor))
    body = {k: v.isoformat() if isinstance(v, date) else v for k, v in GOOD_INTERACTION.items()}
    created = client.post(f"{API}/interactions", headers=headers,
                          json=dict(body, partnership_id=partnership.id, roles_agreed=True))
    assert created.status_code == 201, created.get_json()
    record = created.get_json()
    assert record["roles_agreed"] is True and record["preparation_offered"] is False

    url = f"{API}/interactions/{record['id']}"
    patched = client.patch(url, headers=headers, json={"preparation_offered": True,
                                                       "version": record["version"]})
    assert patched.status_code == 200, patched.get_json()
    assert patched.get_json()["preparation_offered"] is True

    refused = client.patch(url, headers=headers, json={"roles_agreed": "perhaps",
                                                       "version": patched.get_json()["version"]})
    assert refused.status_code == 422
    assert refused.get_json()["error"]["fields"]["roles_agreed"]
    after = client.get(url, headers=headers).get_json()
    assert after["roles_agreed"] is True and after["version"] == patched.get_json()["version"]


def test_the_openapi_document_describes_both_fields(client):
    schemas = client.get(f"{API}/openapi.json").get_json()["components"]["schemas"]
    for name in ("roles_agreed", "preparation_offered"):
        assert schemas["Interaction"]["properties"][name]["type"] == "boolean"
        assert name in schemas["Interaction"]["required"]
        assert schemas["InteractionInput"]["properties"][name]["default"] is False
    sent = schemas["InteractionInput"]["properties"]
    assert "roles and responsibilities" in sent["roles_agreed"]["description"]
    assert "Preparation or training" in sent["preparation_offered"]["description"]


def test_csv_import_reads_the_new_columns_and_an_old_file_without_them_still_imports(
        client, log_in, make_user, sponsor, make_partnership):
    partnership = make_partnership()
    log_in(make_user("advocate", sponsor))
    columns = list(IMPORTERS["interactions"].columns())
    assert {"roles_agreed", "preparation_offered"} <= set(columns)
    row = dict(GOOD_INTERACTION, partnership_id=partnership.id)
    new_file = csv_bytes([dict(row, external_id="CRM-NEW", title="New board", roles_agreed=True,
                            preparation_offered=True)], columns)
    old_columns = [name for name in columns if name not in ("roles_agreed",
                                                            "preparation_offered")]
    old_file = csv_bytes([dict(row, external_id="CRM-OLD", title="Old board")], old_columns)
    assert commit(client, new_file).status_code == 303
    assert commit(client, old_file).status_code == 303
    saved = {i.external_id: i for i in db.session.scalars(select(Interaction))}
    assert (saved["CRM-NEW"].roles_agreed, saved["CRM-NEW"].preparation_offered) == (True, True)
    assert (saved["CRM-OLD"].roles_agreed, saved["CRM-OLD"].preparation_offered) == (False,
                                                                                      False)

    # Importing the old file again leaves an existing record's answers as they were.
    old_again = csv_bytes([dict(row, external_id="CRM-NEW", title="New board")], old_columns)
    assert commit(client, old_again).status_code == 303
    db.session.expire_all()
    kept = db.session.scalars(select(Interaction).where(
        Interaction.external_id == "CRM-NEW")).one()
    assert (kept.roles_agreed, kept.preparation_offered) == (True, True)

    exported = list(csv.DictReader(io.StringIO(client.get("/exports/interactions.csv")
                                               .get_data(as_text=True).lstrip("\ufeff"))))
    by_id = {line["external_id"]: line for line in exported}
    assert by_id["CRM-NEW"]["roles_agreed"].lower() == "true"
    assert by_id["CRM-OLD"]["preparation_offered"].lower() == "false"


def test_a_bad_value_in_the_new_column_is_reported_on_its_row_and_imports_nothing(
        client, log_in, make_user, sponsor, make_partnership):
    partnership = make_partnership()
    log_in(make_user("advocate", sponsor))
    columns = list(IMPORTERS["interactions"].columns())
    data = csv_bytes([dict(GOOD_INTERACTION, partnership_id=partnership.id,
                        external_id="CRM-BAD", roles_agreed="perhaps")], columns)
    page = upload(client, data).get_data(as_text=True)
    assert "<code>roles_agreed</code>" in page and "yes/no" in page
    assert db.session.scalars(select(Interaction)).first() is None


# --- the homes ------------------------------------------------------------------------------


def quality_section(page: str) -> str:
    return page[page.index('id="quality-heading"'):]


@pytest.mark.parametrize("role", ["compliance", "auditor"])
def test_the_home_shows_this_years_measures_of_the_users_organisation_only(
        client, log_in, make_user, sponsor, engagement, role):
    this_year = utcnow().year
    engagement(this_year)
    log_in(make_user(role, sponsor))
    section = quality_section(client.get("/home").get_data(as_text=True))
    assert f"Quality of engagement in {this_year}" in section
    assert "4 held interactions" in section
    assert "<strong>Not served by any interaction in" in section and "Wellness." in section
    assert "2 held interactions of" in section and "1 shared back" in section
    assert SHARED_CHANGE in section and UNSHARED_CHANGE in section
    # The other sponsor's interaction (phase 1, wellness, its change) is not counted.
    assert OTHER_SPONSOR_CHANGE not in section and "Northwind" not in section
    assert "3 of 4" in section and "2 of 4" in section
    assert "Trial design advisory programme" in section and "Discovery" in section


def test_the_home_lists_only_the_latest_changes_and_says_how_many(client, log_in, make_user,
                                                                   sponsor, make_partnership,
                                                                   make_interaction):
    partnership = make_partnership()
    this_year = utcnow().year
    for day in range(12):
        make_interaction(partnership_id=partnership.id, title=f"Meeting {day:02d}",
                         occurred_on=date(this_year, 1, 1) + timedelta(days=day),
                         outcome_changes=f"Change number {day:02d}")
    log_in(make_user("compliance", sponsor))
    section = quality_section(client.get("/home").get_data(as_text=True))
    assert "The 10 most recent" in section
    assert "Change number 11" in section and "Change number 01" not in section


# --- the reports ----------------------------------------------------------------------------


@pytest.fixture
def sponsor_report(make_user, sponsor, engagement):
    """The sponsor's draft report of the year, its officer and the interactions it covers."""
    made = engagement(REPORT_YEAR)
    sponsor.methodology_note = reports.DEFAULT_METHODOLOGY
    officer = make_user("compliance", sponsor)
    report = generate(officer, sponsor)
    assert report.status == "done", report.error
    return report, officer, made


def test_the_internal_report_holds_the_measures_and_the_public_one_does_not(
        client, log_in, sponsor_report):
    report, officer, made = sponsor_report
    quality = json.loads(files.read(report.sha256_of("json", "internal")))["quality"]
    assert quality["year"] == REPORT_YEAR and quality["held"] == 4
    assert quality["patient_needs"]["not_served"] == ["wellness"]
    assert [line["what_changed"] for line in quality["you_said_we_did"]["lines"]] == [
        SHARED_CHANGE, UNSHARED_CHANGE]
    internal_csv = files.read(report.sha256_of("csv", "internal")).decode("utf-8")
    rows = list(csv.DictReader(io.StringIO(internal_csv)))
    assert {"lifecycle_stage", "first_engagement", "patient_need", "you_said_we_did",
            "engagement_practice"} <= {row["section"] for row in rows}
    unshared = next(row for row in rows if row["id"] == f"outcome-change-{made['unshared'].id}")
    assert (unshared["state"], unshared["shared_back_on"]) == ("not_shared_back", "")
    text = pdf_text(files.read(report.sha256_of("pdf", "internal")))
    assert "Quality of engagement beyond flags" in text and "You said, we did" in text
    assert UNSHARED_CHANGE in text

    public = {kind: files.read(report.sha256_of(kind)) for kind in ("json", "csv", "pdf")}
    assert "quality" not in json.loads(public["json"])
    for content in (public["json"], public["csv"]):
        assert SHARED_CHANGE.encode() not in content
        assert b"you_said_we_did" not in content and b"lifecycle_stage" not in content
    assert "You said, we did" not in pdf_text(public["pdf"])

    log_in(officer)
    preview = client.get(f"/reports/{report.id}/preview").get_data(as_text=True)
    assert "Quality of engagement beyond flags" in preview and UNSHARED_CHANGE in preview


def test_a_published_reports_measures_never_change_when_records_change_later(
        client, log_in, sponsor, sponsor_report):
    report, officer, made = sponsor_report
    report = publish(officer, report)
    assert report.is_published, report.error
    frozen = {kind: files.read(report.sha256_of(kind, "internal"))
              for kind in ("pdf", "csv", "json")}

    interactions.update_interaction(made["unshared"], {
        "outcomes_shared_on": date(REPORT_YEAR, 4, 1), "preparation_offered": True}, officer,
        reason="Shared back at the April members' meeting")
    db.session.commit()
    db.session.expire_all()
    report = db.session.get(Report, report.id)
    assert {kind: files.read(report.sha256_of(kind, "internal"))
            for kind in ("pdf", "csv", "json")} == frozen
    log_in(officer)
    preview = client.get(f"/reports/{report.id}/preview").get_data(as_text=True)
    assert "1 shared back with the participants or their community, 1 not shared back" \
        in preview
    # The live records say otherwise now; the home and the next report would show it.
    assert sponsor_measures(sponsor, REPORT_YEAR)["you_said_we_did"]["not_shared_back"] == 0


def test_a_report_frozen_before_the_measures_existed_still_renders(sponsor_report):
    from governance.reports.artefacts import estimated_pages, report_html, snapshot_csv

    report, _officer, _made = sponsor_report
    older = json.loads(files.read(report.sha256_of("json", "internal")))
    del older["quality"]
    assert "Quality of engagement beyond flags" not in report_html(older)
    assert b"you_said_we_did" not in snapshot_csv(older)
    assert estimated_pages(older) >= 1
