"""Every role acts within its organisation: the demo's two sponsors' compliance officers each see
only their own organisation's records, through every page, the API, exports and reports."""

import csv
import io

import pytest
from sqlalchemy import func, select

from governance.audit import AuditEvent
from governance.demo import DEMO_PASSWORD
from governance.extensions import db
from governance.interactions.models import Interaction
from governance.organisations.models import Organisation
from governance.partnerships.models import Partnership, Support
from governance.rules.models import Flag

from .conftest import login


@pytest.fixture
def demo(app):
    from governance.demo import seed_demo

    seed_demo()
    db.session.commit()
    return app


def user(email):
    from governance.auth.services import find_user

    return find_user(email)


def organisation(name) -> Organisation:
    return db.session.scalar(select(Organisation).where(Organisation.name == name))


def sponsored_by(name):
    """The partnerships, interactions and support lines of one sponsor."""
    sponsor = organisation(name)
    partnerships = db.session.scalars(
        select(Partnership).where(Partnership.sponsor_id == sponsor.id)).all()
    ids = [p.id for p in partnerships]
    interactions = db.session.scalars(select(Interaction).where(
        (Interaction.organisation_id == sponsor.id) | Interaction.partnership_id.in_(ids))).all()
    supports = db.session.scalars(select(Support).where(Support.partnership_id.in_(ids))).all()
    return partnerships, interactions, supports


def bearer(person) -> dict:
    from governance.auth.services import issue_token

    token = issue_token(person, "scope test")
    db.session.commit()
    return {"Authorization": f"Bearer {token}"}


def api_ids(client, headers, path) -> set[int]:
    ids, page = set(), 1
    while True:
        body = client.get(f"{path}?per_page=100&page={page}", headers=headers).get_json()
        ids |= {item["id"] for item in body["items"]}
        if page * 100 >= body["total"]:
            return ids
        page += 1


def test_each_sponsors_compliance_officer_sees_only_their_own_records_in_the_api(demo):
    client = demo.test_client()
    helix_partnerships, helix_interactions, helix_supports = sponsored_by("Helix Pharma")
    northwind_partnerships, northwind_interactions, _ = sponsored_by("Northwind Therapeutics")
    assert helix_interactions and northwind_interactions

    helix = bearer(user("compliance@demo.example"))
    northwind = bearer(user("northwind-compliance@demo.example"))
    assert api_ids(client, helix, "/api/v1/interactions") == {i.id for i in helix_interactions}
    assert api_ids(client, northwind, "/api/v1/interactions") == {
        i.id for i in northwind_interactions}

    for record in northwind_interactions[:3]:
        assert client.get(f"/api/v1/interactions/{record.id}", headers=helix).status_code == 404
        refused = client.patch(f"/api/v1/interactions/{record.id}", headers=helix,
                               json={"title": "Renamed", "version": record.version})
        assert refused.status_code == 404
    for record in northwind_partnerships:
        assert client.get(f"/api/v1/partnerships/{record.id}", headers=helix).status_code == 404
    for record in helix_supports[:3]:
        assert client.get(f"/api/v1/supports/{record.id}", headers=northwind).status_code == 404
    assert client.get(f"/api/v1/interactions/{helix_interactions[0].id}",
                      headers=helix).status_code == 200


def test_an_unknown_id_and_another_organisations_id_answer_alike(demo):
    client = demo.test_client()
    helix = bearer(user("compliance@demo.example"))
    northwind_sponsor = organisation("Northwind Therapeutics")
    unknown = client.get("/api/v1/organisations/99999", headers=helix)
    other = client.get(f"/api/v1/organisations/{northwind_sponsor.id}", headers=helix)
    assert (unknown.status_code, other.status_code) == (404, 404)
    listed = {o["name"] for o in client.get("/api/v1/organisations", headers=helix).get_json()}
    assert "Helix Pharma" in listed and "Rare Lung Alliance" in listed
    assert "Northwind Therapeutics" not in listed and "Aurora Biologics" not in listed


def test_a_compliance_officer_reports_for_their_own_organisation_only(demo):
    client = demo.test_client()
    helix = bearer(user("compliance@demo.example"))
    northwind = organisation("Northwind Therapeutics")
    before = db.session.scalar(select(func.count()).select_from(AuditEvent))
    refused = client.post("/api/v1/reports", headers=helix,
                          json={"organisation_id": northwind.id, "year": 2025})
    assert refused.status_code == 404
    assert "organisation_id" in refused.get_json()["error"]["fields"]
    assert db.session.scalar(select(func.count()).select_from(AuditEvent)) == before

    page = login_as(demo, "compliance@demo.example").get("/reports/").get_data(as_text=True)
    assert "Helix Pharma" in page and "Northwind Therapeutics" not in page


def login_as(app, email):
    client = app.test_client()
    login(client, user(email), DEMO_PASSWORD)
    return client


def test_pages_exports_queue_and_audit_trail_hold_nothing_of_another_sponsor(demo):
    _, northwind_interactions, _ = sponsored_by("Northwind Therapeutics")
    northwind_titles = {p.title for p in sponsored_by("Northwind Therapeutics")[0]}
    helix_titles = {p.title for p in sponsored_by("Helix Pharma")[0]}
    client = login_as(demo, "compliance@demo.example")
    for url in ("/partnerships/", "/partnerships/supports", "/interactions/?per_page=100",
                "/review/", "/review/dashboard", "/home", "/exports/partnerships.csv"):
        response = client.get(url)
        assert response.status_code == 200, url
        body = response.get_data(as_text=True)
        assert not {title for title in northwind_titles if title in body}, url
    northwind = sponsored_by("Northwind Therapeutics")[0][0]
    dashboard = client.get(f"/review/dashboard?partnership_id={northwind.id}")
    assert northwind.title not in dashboard.get_data(as_text=True)
    partnerships_page = client.get("/partnerships/").get_data(as_text=True)
    assert all(title in partnerships_page for title in helix_titles
               if "listening" not in title.lower())

    exported = client.get("/exports/interactions.csv").get_data(as_text=True).lstrip("\ufeff")
    rows = list(csv.DictReader(io.StringIO(exported)))
    assert rows and not {int(r["id"]) for r in rows} & {i.id for i in northwind_interactions}

    trail = client.get("/audit/?entity=interaction").get_data(as_text=True)
    assert f"/audit/interaction/{northwind_interactions[0].id}\"" not in trail
    assert client.get(f"/audit/interaction/{northwind_interactions[0].id}").status_code == 404

    flag = db.session.scalar(select(Flag).where(
        Flag.interaction_id.in_([i.id for i in northwind_interactions])))
    assert client.get(f"/review/flags/{flag.id}").status_code == 404
    api = demo.test_client()
    headers = bearer(user("compliance@demo.example"))
    resolved = api.post(f"/api/v1/flags/{flag.id}/transition", headers=headers,
                        json={"state": "dismissed", "note": "not ours"})
    assert resolved.status_code == 404
    events = api.get("/api/v1/audit?entity=interaction", headers=headers).get_json()
    assert not {e["entity_id"] for e in events} & {i.id for i in northwind_interactions}


def test_an_external_auditor_reads_the_organisation_they_were_granted(demo):
    client = demo.test_client()
    external = bearer(user("external-auditor@demo.example"))
    _, northwind_interactions, _ = sponsored_by("Northwind Therapeutics")
    _, helix_interactions, _ = sponsored_by("Helix Pharma")
    seen = api_ids(client, external, "/api/v1/interactions")
    assert {i.id for i in northwind_interactions} <= seen
    assert not seen & {i.id for i in helix_interactions}
    refused = client.patch(f"/api/v1/interactions/{northwind_interactions[0].id}",
                           headers=external, json={"title": "x", "version": 1})
    assert refused.status_code == 403


def test_admins_manage_organisations_but_read_no_compliance_records(demo):
    client = demo.test_client()
    admin = bearer(user("admin@demo.example"))
    assert client.get("/api/v1/interactions", headers=admin).status_code == 403
    assert client.get("/api/v1/audit", headers=admin).status_code == 403
    names = {o["name"] for o in client.get("/api/v1/organisations", headers=admin).get_json()}
    assert {"Helix Pharma", "Northwind Therapeutics", "Aurora Biologics"} <= names


def test_an_import_row_naming_another_organisations_partnership_is_refused(demo):
    from governance.transfer import imports

    northwind_partnership = sponsored_by("Northwind Therapeutics")[0][0]
    helix_partnership = sponsored_by("Helix Pharma")[0][0]
    header = "title,occurred_on,format,partnership_id,external_id\n"
    data = (header + f"Ours,2025-03-01,workshop,{helix_partnership.id},CRM-1\n"
            + f"Theirs,2025-03-02,workshop,{northwind_partnership.id},CRM-2\n").encode()
    before = db.session.scalar(select(func.count()).select_from(Interaction))
    report = imports.import_file("interactions", data, user("advocate@demo.example"),
                                 filename="x.csv", digest="0" * 64, commit=True)
    assert {(p.row, p.column) for p in report.problems} == {(3, "partnership_id")}
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(Interaction)) == before
