"""Large imports run by the task worker: the same outcome as in a request (every row or none,
audited as the person who asked), followed on a page of their own."""

import time

import pytest
from sqlalchemy import func, select

from governance.audit import AuditEvent
from governance.extensions import db
from governance.interactions.models import Interaction
from governance.transfer.models import ImportRun

from .conftest import login
from .test_import import advocate, csv_bytes, digest_of, interaction_row, partnership, upload

__all__ = ["advocate", "partnership"]  # the fixtures


@pytest.fixture
def app_config():
    return {"JOBS_INLINE": False, "IMPORT_IN_BACKGROUND_ROWS": 2}


def follow(client, path: str, timeout: float = 60) -> dict:
    deadline, status = time.monotonic() + timeout, {}
    while time.monotonic() < deadline:
        db.session.rollback()
        status = client.get(f"{path}/status").get_json()
        if status["status"] not in ("queued", "running"):
            return status
        time.sleep(0.1)
    raise AssertionError(f"the import is still {status.get('status')}")


def test_a_large_file_is_imported_by_the_worker_as_the_person_who_asked(
        client, advocate, partnership, task_worker):
    data = csv_bytes([interaction_row(partnership, n) for n in range(1, 4)])
    digest = digest_of(upload(client, data))
    response = client.post(f"/imports/interactions/{digest}/commit")
    assert response.status_code == 303
    path = response.headers["Location"]
    assert path.startswith("/imports/runs/")
    assert "is being imported (3 rows)" in client.get(path).get_data(as_text=True)

    status = follow(client, path)
    assert status["status"] == "done", status
    assert status["summary"] == "Imported meetings.csv: 3 created, 0 updated, 0 unchanged."
    assert db.session.scalar(select(func.count(Interaction.id))) == 3
    created = db.session.scalars(select(AuditEvent).where(
        AuditEvent.entity == "interaction", AuditEvent.action == "create")).all()
    assert {event.actor_label for event in created} == {advocate.email}
    page = client.get(path).get_data(as_text=True)
    assert "See the imported records" in page


def test_a_small_file_is_still_imported_in_the_request(client, advocate, partnership):
    data = csv_bytes([interaction_row(partnership, 1)])
    digest = digest_of(upload(client, data))
    response = client.post(f"/imports/interactions/{digest}/commit")
    assert response.status_code == 303 and response.headers["Location"] == "/interactions/"
    assert db.session.scalar(select(func.count(ImportRun.id))) == 0
    assert db.session.scalar(select(func.count(Interaction.id))) == 1


def test_an_import_run_is_only_its_askers(client, advocate, partnership, make_user, sponsor):
    data = csv_bytes([interaction_row(partnership, n) for n in range(1, 4)])
    digest = digest_of(upload(client, data))
    path = client.post(f"/imports/interactions/{digest}/commit").headers["Location"]
    client.post("/logout")
    login(client, make_user("advocate", sponsor))
    assert client.get(path).status_code == 404
    assert client.get(f"{path}/status").status_code == 404


def test_the_same_upload_is_not_imported_twice_at_once(client, advocate, partnership):
    data = csv_bytes([interaction_row(partnership, n) for n in range(1, 4)])
    digest = digest_of(upload(client, data))
    first = client.post(f"/imports/interactions/{digest}/commit")
    again = client.post(f"/imports/interactions/{digest}/commit", follow_redirects=True)
    assert first.status_code == 303
    assert "is already being imported" in again.get_data(as_text=True)
    assert db.session.scalar(select(func.count(ImportRun.id))) == 1


def test_rows_broken_since_the_preview_import_nothing_and_say_so(client, advocate, partnership,
                                                                 task_worker, app):
    data = csv_bytes([interaction_row(partnership, n) for n in range(1, 4)])
    digest = digest_of(upload(client, data))
    partnership.voided_at = partnership.created_at  # the partnership went away meanwhile
    partnership.void_reason = "Entered twice"
    db.session.commit()
    path = client.post(f"/imports/interactions/{digest}/commit").headers["Location"]

    status = follow(client, path)
    assert status["status"] == "failed"
    assert status["error"].startswith("Nothing was imported: 3 problem(s) since the preview")
    assert db.session.scalar(select(func.count(Interaction.id))) == 0
