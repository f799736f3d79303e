"""Faults: a worker killed mid-import, a read-only database, a full disk.

Each leaves the records as they were, and the person sees what happened in words, never a
traceback. (bench/faults/run.py repeats these against gunicorn with a real read-only and a real
full file system, and restarts PostgreSQL under load.)
"""

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from sqlalchemy import event, func, select, text

from governance.audit import AuditEvent, verify_chain
from governance.auth import services as accounts
from governance.auth.models import ApiToken
from governance.extensions import db
from governance.interactions.models import Interaction
from governance.operations.failures import DISK_FULL, READ_ONLY

from .conftest import GOOD_INTERACTION, login

ROOT = Path(__file__).resolve().parents[1]


def state() -> dict:
    result = {
        "interactions": db.session.scalar(select(func.count(Interaction.id))),
        "audit_events": db.session.scalar(select(func.count(AuditEvent.id))),
        "titles": sorted(db.session.scalars(select(Interaction.title))),
    }
    db.session.commit()  # end the read (outside a request, SQLite reads take the write lock)
    return result


def api_body(sponsor, **changes) -> dict:
    values = {k: v.isoformat() if hasattr(v, "isoformat") else v
              for k, v in GOOD_INTERACTION.items()}
    return dict(values, organisation_id=sponsor.id, **changes)


@pytest.fixture
def token(compliance_user):
    value = accounts.issue_token(compliance_user, "tests")
    db.session.commit()
    return {"Authorization": f"Bearer {value}"}


# --- a worker killed in the middle of a CSV import -------------------------------------------

CHILD = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {root!r})
    from governance import create_app
    from governance.extensions import db
    app = create_app({{"SQLALCHEMY_DATABASE_URI": {url!r}, "SECRET_KEY": "x",
                       "AUDIT_KEY": "fault-test-audit-key-0123456789abcdef",
                       "DATA_DIR": {data!r}}})
    with app.app_context():
        from governance.auth.models import User
        from governance.transfer import imports
        original = imports.InteractionImporter.run_batch
        batches = []

        def run_batch(self, batch, report):
            original(self, batch, report)
            batches.append(len(batch))
            if len(batches) == 1:  # a thousand rows written, not yet committed
                db.session.flush()
                print("HALFWAY", flush=True)
                time.sleep(120)

        imports.InteractionImporter.run_batch = run_batch
        actor = db.session.get(User, {actor_id})
        data = open({csv_path!r}, "rb").read()
        imports.import_file("interactions", data, actor, filename="big.csv", digest="0" * 64,
                            commit=True)
        print("COMMITTED", flush=True)
""")


def test_a_worker_killed_in_the_middle_of_a_csv_import_leaves_the_database_as_before(
        app, tmp_path, make_interaction, compliance_user, sponsor):
    make_interaction(title="Logged before the import")
    before = state()
    rows = ["title,occurred_on,format,organisation_id,external_id"]
    rows += [f"Imported {n},2025-0{1 + n % 9}-1{n % 10},survey,{sponsor.id},CRM-{n:05d}"
             for n in range(1500)]
    csv_path = tmp_path / "big.csv"
    csv_path.write_text("\n".join(rows) + "\n")
    script = CHILD.format(root=str(ROOT), url=db.engine.url.render_as_string(hide_password=False),
                          data=str(tmp_path / "data"), actor_id=compliance_user.id,
                          csv_path=str(csv_path))
    db.session.commit()
    with subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True) as child:
        try:
            line = child.stdout.readline().strip()
            assert line == "HALFWAY", child.stderr.read()
        finally:
            os.kill(child.pid, signal.SIGKILL)  # dies without committing or cleaning up
            child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL

    assert state() == before
    assert verify_chain().intact
    # and the database is not left locked: the next change goes through at once
    make_interaction(title="Logged after the crash")
    assert state()["interactions"] == before["interactions"] + 1


# --- a read-only database --------------------------------------------------------------------


def make_read_only(app) -> None:
    """New connections may read but not write (as a database file mounted read-only)."""
    if db.engine.dialect.name == "postgresql":
        name = db.engine.url.database
        db.session.execute(text(f'ALTER DATABASE "{name}" SET default_transaction_read_only '
                                "= on"))
        db.session.commit()
    else:
        event.listen(db.engine, "connect", _sqlite_query_only)
    db.session.commit()
    db.engine.dispose()


def make_writable(app) -> None:
    if db.engine.dialect.name == "postgresql":
        db.session.commit()
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as admin:
            admin.execute(text("SET default_transaction_read_only = off"))
            admin.execute(text(f'ALTER DATABASE "{db.engine.url.database}" RESET '
                               "default_transaction_read_only"))
    else:
        event.remove(db.engine, "connect", _sqlite_query_only)
    db.session.commit()
    db.engine.dispose()


def _sqlite_query_only(dbapi_connection, _record):
    dbapi_connection.execute("PRAGMA query_only = ON")


def test_a_read_only_database_refuses_api_writes_with_a_clear_message(
        app, client, token, sponsor, make_interaction):
    existing = make_interaction(title="Already recorded")
    url, version = f"/api/v1/interactions/{existing.id}", existing.version
    new = api_body(sponsor, title="New during the outage")
    before = state()
    make_read_only(app)
    try:
        created = client.post("/api/v1/interactions", headers=token, json=new)
        edited = client.patch(url, headers=token, json={"title": "Edited during the outage",
                                                         "version": version})
        read = client.get(url, headers=token)
    finally:
        make_writable(app)
    for answer in (created, edited):
        assert answer.status_code == 503
        assert answer.get_json() == {"error": {"message": READ_ONLY}}
        assert "Retry-After" not in answer.headers  # retrying will not help
    assert read.status_code == 200 and read.get_json()["title"] == "Already recorded"
    assert state() == before
    assert verify_chain().intact


def test_a_read_only_database_answers_api_reads_though_the_tokens_use_is_not_recorded(
        app, client, token, make_interaction, caplog):
    url = f"/api/v1/interactions/{make_interaction(title='Already recorded').id}"
    make_read_only(app)
    try:
        read = client.get(url, headers=token)
    finally:
        make_writable(app)
    assert read.status_code == 200 and read.get_json()["title"] == "Already recorded"
    assert "was not recorded" in caplog.text
    assert db.session.scalars(db.select(ApiToken.last_used_at)).one() is None


def test_a_read_only_database_shows_a_page_saying_nothing_was_saved(
        app, client, make_user, sponsor, make_interaction):
    advocate = make_user("advocate", sponsor)
    existing = make_interaction(title="Already recorded", organisation_id=sponsor.id)
    login(client, advocate)
    void_url = f"/interactions/{existing.id}/void"
    before = state()
    make_read_only(app)
    try:
        answer = client.post(void_url,
                             data={"reason": "Logged twice by mistake"})
    finally:
        make_writable(app)
    page = answer.get_data(as_text=True)
    assert answer.status_code == 503
    assert "read-only" in page and "nothing was saved" in page
    assert "Traceback" not in page and "OperationalError" not in page
    assert state() == before


# --- a full disk -----------------------------------------------------------------------------


@pytest.mark.sqlite_only
def test_a_full_disk_refuses_the_change_and_keeps_existing_records(
        app, client, token, sponsor, make_interaction):
    make_interaction(title="Already recorded")
    too_big = api_body(sponsor, title="Too big for the disk",
                       summary="Minutes of the meeting. " * 4000)
    before = state()
    pages = db.session.execute(text("PRAGMA page_count")).scalar()
    db.session.commit()

    def disk_full(dbapi_connection, _record):  # the file may not grow by a single page
        dbapi_connection.execute(f"PRAGMA max_page_count = {pages}")

    event.listen(db.engine, "connect", disk_full)
    db.engine.dispose()
    try:
        answer = client.post("/api/v1/interactions", headers=token, json=too_big)
    finally:
        event.remove(db.engine, "connect", disk_full)
        db.engine.dispose()
    assert answer.status_code == 503
    assert answer.get_json() == {"error": {"message": DISK_FULL}}
    assert state() == before
    assert verify_chain().intact


# --- text no database keeps ------------------------------------------------------------------


def test_a_nul_character_is_refused_up_front_on_every_database(client, token, sponsor,
                                                               make_user, make_interaction):
    before = make_interaction(title="Already recorded")
    url = f"/api/v1/interactions/{before.id}"
    search = client.get("/api/v1/organisations?q=%00", headers=token)
    assert search.status_code == 400
    assert search.get_json()["error"]["fields"] == {"q": ["Text may not contain a NUL "
                                                          "character."]}
    edited = client.patch(url, headers=token, json={"title": "Bad\u0000title",
                                                    "accommodations": ["ok", "n\u0000"],
                                                    "version": before.version})
    assert edited.status_code == 400
    assert set(edited.get_json()["error"]["fields"]) <= {"title", "accommodations[1]"}
    advocate = make_user("advocate", sponsor)
    page_client = client.application.test_client()
    login(page_client, advocate)
    page = page_client.get("/interactions/?q=a%00b")
    assert page.status_code == 400 and "NUL character" in page.get_data(as_text=True)
    assert client.get(url, headers=token).get_json()["title"] == "Already recorded"
