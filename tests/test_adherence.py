"""One definition of adherence: the compliance home, the dashboard, the API and the report give
the same figures (the share of the year's held interactions with no open or acknowledged flag
of the dimension, on the interaction or its partnership)."""

import json
from datetime import date

import pytest
from sqlalchemy import select

from governance.database import utcnow
from governance.extensions import db
from governance.reports import jobs, services
from governance.reports.models import Report
from governance.review.adherence import for_viewer
from governance.review.services import transition_flag
from governance.rules.models import Flag
from governance.storage import REPORTS

from .conftest import login


@pytest.fixture
def app_config():
    return {"JOBS_INLINE": True}


def test_home_dashboard_api_and_report_agree(sponsor, make_partnership, make_interaction,
                                             compliance_user, client, bearer):
    year = utcnow().year
    sponsor.methodology_note = services.DEFAULT_METHODOLOGY
    partnership = make_partnership("Trial design advisory programme",
                                   agreement_signed_on=date(year - 1, 1, 5))
    day = utcnow().date().replace(month=1, day=2)
    flagged = make_interaction(partnership_id=partnership.id, title="Ad hoc selection",
                               selection_method="ad_hoc", occurred_on=day,
                               purpose_shared_on=day)
    kept = make_interaction(partnership_id=partnership.id, title="Kept with a reason",
                            selection_method="ad_hoc", occurred_on=day, purpose_shared_on=day)
    dismissed = make_interaction(partnership_id=partnership.id, title="Did not apply",
                                 selection_method="ad_hoc", occurred_on=day,
                                 purpose_shared_on=day)
    make_interaction(partnership_id=partnership.id, title="Clean", occurred_on=day,
                     purpose_shared_on=day)
    make_interaction(partnership_id=partnership.id, title="Still planned", status="planned",
                     selection_method="ad_hoc", occurred_on=day, purpose_shared_on=day)
    db.session.commit()
    who_flags = {i.id: db.session.scalars(select(Flag).where(
        Flag.interaction_id == i.id, Flag.dimension == "WHO", Flag.state == "open")).first()
        for i in (flagged, kept, dismissed)}
    assert all(who_flags.values()), "the fixture needs a WHO flag on each"
    transition_flag(who_flags[kept.id], "acknowledged", "Kept on purpose", compliance_user)
    transition_flag(who_flags[dismissed.id], "dismissed", "Not applicable", compliance_user)
    db.session.commit()

    figures = {row.dimension: (row.met, row.interactions)
               for row in for_viewer(compliance_user, date(year, 1, 1), utcnow().date())}
    assert figures["WHO"] == (2, 4)  # held only; open and acknowledged count, dismissed not

    login(client, compliance_user)
    home = client.get("/home").get_data(as_text=True)
    assert "2 of 4" in home and "50%" in home
    dashboard = client.get(f"/review/dashboard?date_from={year}-01-01&date_to={year}-12-31"
                           ).get_data(as_text=True)
    assert "50 %" in dashboard

    api = client.get(f"/api/v1/adherence?year={year}&organisation_id={sponsor.id}",
                     headers=bearer(compliance_user)).get_json()
    who = next(item for item in api["items"] if item["dimension"] == "WHO")
    assert (who["met"], who["interactions"], who["rate"]) == (2, 4, "0.5000")
    assert client.get("/api/v1/adherence?year=1800",
                      headers=bearer(compliance_user)).status_code == 422

    report = services.request_report({"organisation_id": sponsor.id, "year": year},
                                     compliance_user)
    db.session.commit()
    jobs.start(report.id)
    db.session.expire_all()
    report = db.session.get(Report, report.id)
    snapshot = json.loads(REPORTS.read(report.internal_json_sha256))
    row = next(r for r in snapshot["interactions"]["adherence"] if r["dimension"] == "WHO")
    assert (row["met"], row["interactions"], row["rate"]) == (2, 4, "0.5000")
    assert (row["with_open_flag"], row["kept_with_justification"]) == (1, 1)
    public = json.loads(REPORTS.read(report.json_sha256))
    assert next(r for r in public["adherence"] if r["dimension"] == "WHO")["rate"] == "0.5000"
