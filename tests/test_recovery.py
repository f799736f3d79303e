"""Recovery without a restart: once the database takes writes again, so does the application.

The disk is made read-only for real: on SQLite the database file and its write-ahead log are
made immutable (`chattr +i`, which binds root too) or, for another user, read-only (chmod); on
PostgreSQL the database refuses writes in every new session. Connections opened meanwhile are
read-only for good, so the application must not keep them once the database is writable again.
"""

import os
import shutil
import sqlite3
import subprocess
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import func, select

from governance.extensions import db
from governance.interactions.models import Interaction
from governance.operations.backup import has_data
from governance.operations.failures import BUSY, READ_ONLY

from . import test_faults
from .conftest import login
from .test_faults import api_body

token = test_faults.token  # the fixture: an API token of a compliance officer


@pytest.fixture
def app_config():
    return {"SQLITE_BUSY_TIMEOUT_MS": 300}


@contextmanager
def read_only_database():
    """The database refuses writes, as on a disk remounted read-only, until the block ends.

    The application's pool is emptied first, as in a worker started during the outage: every
    connection it opens is opened read-only."""
    db.session.commit()
    if db.engine.dialect.name == "postgresql":
        outage = _postgres_read_only()
    else:
        outage = _sqlite_read_only(Path(db.engine.url.database))
    with outage:
        db.engine.dispose()
        yield
        # The requests' transaction ends as at the end of each request (the tests share one
        # application context): its connection goes back to the pool.
        db.session.rollback()


@contextmanager
def _sqlite_read_only(database: Path):
    # Not the -shm file: SQLite maps it into memory, and an immutable mapping kills the process.
    files = [str(path) for path in (database, Path(f"{database}-wal")) if path.exists()]
    if os.geteuid() == 0:
        if not shutil.which("chattr") or subprocess.run(
                ["chattr", "+i", *files], capture_output=True).returncode:
            pytest.skip("this file system cannot make a file immutable (chattr +i)")
        try:
            yield
        finally:
            subprocess.run(["chattr", "-i", *files], check=True)
    else:
        modes = {path: os.stat(path).st_mode for path in files}
        for path in files:
            os.chmod(path, 0o444)
        try:
            yield
        finally:
            for path, mode in modes.items():
                os.chmod(path, mode)


@contextmanager
def _postgres_read_only():
    url = db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    name = db.engine.url.database
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
        try:
            yield
        finally:
            admin.execute(f'ALTER DATABASE "{name}" RESET default_transaction_read_only')


def interactions() -> int:
    count = db.session.scalar(select(func.count(Interaction.id)))
    db.session.commit()
    return count


def test_writes_and_health_recover_the_moment_the_database_is_writable_again_twice(
        app, client, token, sponsor, make_interaction):
    existing = make_interaction(title="Already recorded")
    url = f"/api/v1/interactions/{existing.id}"
    for switch in (1, 2):
        before = interactions()
        with read_only_database():
            created = client.post("/api/v1/interactions", headers=token,
                                  json=api_body(sponsor, title=f"During outage {switch}"))
            health = client.get("/health")
            read = client.get(url, headers=token)  # a read opens a read-only connection
        assert created.status_code == 503
        assert created.get_json() == {"error": {"message": READ_ONLY}}
        assert "Retry-After" not in created.headers  # retrying will not help
        assert health.status_code == 503
        assert health.get_json() | {"message": "?"} == {
            "status": "unavailable", "database": db.engine.dialect.name, "writes": "failed",
            "problem": "read-only", "retry_helps": False, "message": "?"}
        assert health.get_json()["message"] == READ_ONLY
        assert read.status_code == 200 and read.get_json()["title"] == "Already recorded"

        # writable again, the application untouched: the very next write goes through
        after = [client.post("/api/v1/interactions", headers=token,
                             json=api_body(sponsor, title=f"After outage {switch} #{n}"))
                 for n in range(3)]
        assert [answer.status_code for answer in after] == [201, 201, 201]
        health = client.get("/health")
        assert health.status_code == 200
        assert health.get_json() == {"status": "ok", "database": db.engine.dialect.name,
                                     "writes": "ok"}
        assert interactions() == before + 3


@pytest.mark.sqlite_only
def test_a_connection_in_use_when_the_disk_turns_read_only_is_replaced_afterwards(
        app, client, token, sponsor, make_interaction):
    """No fresh worker this time: the pool's connection was opened writable, and its writes fail
    with an I/O error while the file is immutable."""
    if os.geteuid() != 0:
        pytest.skip("only root can make a file immutable; chmod spares open files")
    make_interaction(title="Already recorded")
    db.session.commit()
    with _sqlite_read_only(Path(db.engine.url.database)):
        created = client.post("/api/v1/interactions", headers=token,
                              json=api_body(sponsor, title="During the outage"))
        health = client.get("/health")
        listed = client.get("/api/v1/interactions", headers=token)
        db.session.rollback()  # the end of the request, as in read_only_database
    assert created.status_code == 503
    assert created.get_json() == {"error": {"message": READ_ONLY}}
    assert health.status_code == 503 and health.get_json()["problem"] == "read-only"
    assert listed.status_code == 200
    assert client.post("/api/v1/interactions", headers=token,
                       json=api_body(sponsor, title="After the outage")).status_code == 201
    assert client.get("/health").status_code == 200


def test_the_read_only_page_says_retrying_will_not_help(app, client, make_user, sponsor,
                                                       make_interaction):
    advocate = make_user("advocate", sponsor)
    existing = make_interaction(title="Already recorded", organisation_id=sponsor.id)
    login(client, advocate)
    with read_only_database():
        answer = client.post(f"/interactions/{existing.id}/void",
                             data={"reason": "Logged twice by mistake"})
    page = answer.get_data(as_text=True).replace("&#39;", "'")
    assert answer.status_code == 503
    assert "nothing was saved" in page and "Retrying will not help" in page
    assert "Retry-After" not in answer.headers
    voided = client.post(f"/interactions/{existing.id}/void",
                         data={"reason": "Logged twice by mistake"})
    assert voided.status_code == 302


@pytest.mark.sqlite_only
def test_a_busy_database_says_to_retry_shortly_with_retry_after(app, client, token, sponsor):
    body = api_body(sponsor, title="While the lock is held")
    db.session.commit()
    other = sqlite3.connect(db.engine.url.database, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another program holds the write lock
    try:
        answer = client.post("/api/v1/interactions", headers=token, json=body)
        health = client.get("/health")
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert answer.status_code == 503
    assert answer.get_json() == {"error": {"message": BUSY}}
    assert "retry in a few seconds" in BUSY.lower()
    assert int(answer.headers["Retry-After"]) <= 5
    assert health.status_code == 503
    assert health.get_json()["problem"] == "busy" and health.get_json()["retry_helps"] is True
    assert int(health.headers["Retry-After"]) <= 5
    assert client.post("/api/v1/interactions", headers=token, json=body).status_code == 201


def test_the_health_checks_write_leaves_an_empty_database_empty(app, client):
    assert [client.get("/health").status_code for _ in range(3)] == [200, 200, 200]
    assert not has_data()  # a restore into a new instance is not refused for holding records
