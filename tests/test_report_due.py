"""Due dates of the transparency reports: from policy, each organisation-year's status, and the
reminders on the reports page and the compliance home."""

import shutil
from datetime import date, datetime
from pathlib import Path

import pytest

from governance.extensions import db
from governance.reports import due
from governance.reports.models import Report
from governance.rules.cli import check_policy_files

from .conftest import login, make_config
from .test_reports import NOTE, record_support

POLICIES = Path(__file__).resolve().parent.parent / "policies"


@pytest.fixture
def history(sponsor, patient_group, make_partnership, compliance_user):
    """A sponsor whose first support line was paid in 2023."""
    sponsor.methodology_note = NOTE
    db.session.commit()
    partnership = make_partnership(started_on=date(2023, 1, 1))
    record_support(compliance_user, partnership, patient_group, date(2023, 5, 1), "100.00")
    return sponsor


def report(organisation, year, revision=1, status="done", **values) -> Report:
    row = Report(organisation_id=organisation.id, year=year, revision=revision, status=status,
                 job=values.pop("job", "generate"), progress=100, **values)
    db.session.add(row)
    db.session.commit()
    return row


def test_a_report_is_due_on_30_june_of_the_next_year_by_default(app):
    assert due.due_date(2025) == date(2026, 6, 30)


def test_the_due_date_comes_from_the_policy(tmp_path):
    from governance import create_app

    folder = tmp_path / "policies"
    shutil.copytree(POLICIES, folder)
    rules = folder / "rules.toml"
    rules.write_text(rules.read_text().replace('due = "06-30"', 'due = "03-31"'))
    app = create_app(make_config(tmp_path, POLICIES_DIR=str(folder)))
    with app.app_context():
        from governance.extensions import db

        db.create_all()  # the version in force may be one put in force in the application
        assert due.due_date(2025) == date(2026, 3, 31)


@pytest.mark.parametrize("line, problem", [
    ('due = "06-31"', "'due' must be a day of the year as \"MM-DD\""),
    ('due = 630', "'due' must be a day of the year"),
    ("review_window_days = 0", "'review_window_days' must be a whole number of days"),
    ('reminder_days = "soon"', "'reminder_days' must be a whole number of days"),
    ("remind = 3", "unknown key 'remind'"),
])
def test_check_policies_refuses_a_bad_reporting_value(tmp_path, line, problem):
    folder = tmp_path / "policies"
    shutil.copytree(POLICIES, folder)
    rules = folder / "rules.toml"
    key = line.split(" = ")[0]
    text = rules.read_text()
    replaced = "\n".join(line if existing.startswith(f"{key} = ") else existing
                         for existing in text.splitlines()) + "\n"
    if replaced == text:
        replaced = text.replace("[reporting]\n", f"[reporting]\n{line}\n")
    rules.write_text(replaced)

    problems, _confirmations = check_policy_files(folder)
    assert any("[reporting]" in found and problem in found for found in problems), problems


def test_each_year_from_the_first_record_to_last_year_has_a_status(history, make_org):
    today = date(2026, 12, 2)
    report(history, 2025)
    published = report(history, 2024, status="published", published_at=datetime(2025, 5, 1))
    report(history, 2024, revision=2, corrects_id=published.id)  # a correction in draft

    rows = due.due_years([history], today)
    assert [(row.year, row.due, row.status) for row in rows] == [
        (2025, date(2026, 6, 30), "overdue"),
        (2024, date(2025, 6, 30), "published"),
        (2023, date(2024, 6, 30), "overdue"),
    ]
    assert rows[1].report.revision == 2


def test_the_status_moves_from_not_started_to_draft_signed_and_published(history):
    today = date(2026, 3, 1)
    assert due.reporting_status(history, 2025, today) == "not started"
    draft = report(history, 2025)
    assert due.reporting_status(history, 2025, today) == "draft"
    draft.signed_at = datetime(2026, 2, 27, 9, 0)
    draft.job, draft.status = "publish", "running"
    db.session.commit()
    assert due.reporting_status(history, 2025, today) == "signed"
    draft.status, draft.published_at = "published", datetime(2026, 2, 27, 9, 1)
    db.session.commit()
    assert due.reporting_status(history, 2025, date(2027, 1, 1)) == "published"


def test_reminders_start_45_days_before_the_due_date_and_go_on_when_overdue(history):
    report(history, 2024, status="published", published_at=datetime(2025, 5, 1))

    early = due.reminders(due.due_years([history], date(2026, 5, 15)), date(2026, 5, 15))
    assert [reminder.due_year.year for reminder in early] == [2023]  # 2025's: 46 days away
    near = due.reminders(due.due_years([history], date(2026, 5, 16)), date(2026, 5, 16))
    assert [(r.due_year.year, r.overdue) for r in near] == [(2023, True), (2025, False)]
    assert near[1].message == (
        f"The 2025 report of {history.name} is due on 30 June 2026, in 45 days.")
    assert "was due on 30 June 2024: it is" in near[0].message


def test_the_reports_page_and_the_compliance_home_show_what_is_due(history, compliance_user,
                                                                  client):
    login(client, compliance_user)
    page = client.get("/reports/").get_data(as_text=True)
    assert "Due dates" in page and "30 Jun 2026" in page and "Overdue" in page
    assert "Generate<span class=\"visually-hidden\"> the 2025 report of Helix Pharma" in page

    home = client.get("/home").get_data(as_text=True)
    assert "Reports due" in home
    assert "The 2023 report of Helix Pharma was due on 30 June 2024" in home
