"""Fixtures: a fresh database per test, factories for records, and a logged-in client.

The database is SQLite (a file per test, copied from a file that holds the schema) unless
TEST_DATABASE_URL names a PostgreSQL server: then every test gets its own database, cloned from
a template that holds the schema. Each pytest-xdist worker builds its own template. Tests
marked `sqlite_only` or `postgres_only` are deselected on the other database.
"""

import os
import re
import shutil
import sqlite3
import tempfile
import time
from datetime import date, timedelta

import pytest
from argon2 import PasswordHasher

from governance import create_app
from governance.auth import services as accounts
from governance.extensions import db

PASSWORD = "correct horse battery"
TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "").strip()


def _cheap_password_hashing() -> None:
    """Hash the tests' passwords with argon2id at its lowest cost: the same algorithm, format
    and checks, but at the production cost hashing took about 40 % of the suite's CPU time."""
    hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    accounts._hasher = hasher
    accounts._DUMMY_HASH = hasher.hash("not-a-real-password")


_cheap_password_hashing()


class PostgresDatabases:
    """Creates a fresh database per test from a template that already holds the schema."""

    def __init__(self, url: str):
        from sqlalchemy.engine import make_url

        self.url = make_url(url).set(drivername="postgresql+psycopg")
        self.prefix = f"governance_test_{os.getpid()}"
        self.template = f"{self.prefix}_template"
        self.created: list[str] = []
        self.count = 0

    def url_for(self, name: str) -> str:
        return self.url.set(database=name).render_as_string(hide_password=False)

    def admin(self):
        import psycopg

        conninfo = self.url.set(drivername="postgresql").render_as_string(hide_password=False)
        return psycopg.connect(conninfo, autocommit=True)

    def fresh(self, empty: bool = False) -> str:
        if self.count == 0:
            self._build_template()
        self.count += 1
        name = f"{self.prefix}_{self.count}"
        template = "template0" if empty else self.template
        with self.admin() as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            # FILE_COPY (PostgreSQL 15+) clones a small template several times faster.
            strategy = " STRATEGY FILE_COPY" if connection.info.server_version >= 150000 else ""
            connection.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"{strategy}')
        self.created.append(name)
        return self.url_for(name)

    def _build_template(self) -> None:
        with self.admin() as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{self.template}" WITH (FORCE)')
            connection.execute(f'CREATE DATABASE "{self.template}"')
        app = create_app({"TESTING": True, "SECRET_KEY": "template",
                          "SQLALCHEMY_DATABASE_URI": self.url_for(self.template)})
        with app.app_context():
            db.create_all()
            db.session.remove()
            db.engine.dispose()

    def drop_created(self) -> None:
        if not self.created:
            return
        with self.admin() as connection:
            for name in self.created:
                connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.created.clear()

    def drop_template(self) -> None:
        if self.count:
            with self.admin() as connection:
                connection.execute(f'DROP DATABASE IF EXISTS "{self.template}" WITH (FORCE)')


class SqliteTemplate:
    """A SQLite file that holds the schema, built once per process; each test's database is a
    copy of it (copying a file is many times faster than creating forty tables and triggers)."""

    def __init__(self, folder):
        self.folder = folder
        self.path = None

    def copy_to(self, uri: str) -> bool:
        """Copy the schema into the new SQLite file `uri` names; False if it is not one."""
        from sqlalchemy.engine import make_url

        url = make_url(uri)
        if url.get_backend_name() != "sqlite" or not url.database or os.path.exists(url.database):
            return False
        if self.path is None:
            self.path = self._build()
        shutil.copyfile(self.path, url.database)
        return True

    def _build(self) -> str:
        path = str(self.folder / "schema.sqlite")
        app = create_app({"TESTING": True, "SECRET_KEY": "template",
                          "SQLALCHEMY_DATABASE_URI": f"sqlite:///{path}",
                          "DATA_DIR": str(self.folder / "data")})
        with app.app_context():
            db.create_all()
            db.session.remove()
            db.engine.dispose()
        # One self-contained file: each copy turns WAL on again when the test first connects.
        with sqlite3.connect(path) as connection:
            connection.execute("PRAGMA journal_mode = DELETE")
        connection.close()
        return path


postgres = PostgresDatabases(TEST_DATABASE_URL) if TEST_DATABASE_URL else None
_databases_by_path: dict[str, str] = {}


def test_database_uri(tmp_path) -> str:
    """The database of one test: a SQLite file in its tmp_path, or a fresh PostgreSQL one."""
    if postgres is None:
        return f"sqlite:///{tmp_path / 'test.sqlite'}"
    key = str(tmp_path)
    if key not in _databases_by_path:
        _databases_by_path[key] = postgres.fresh()
    return _databases_by_path[key]


test_database_uri.__test__ = False  # a helper, not a test


def empty_database_uri(tmp_path) -> str:
    """A database without any table (for migrations): a new SQLite file, or a new PostgreSQL
    database created from template0. Pass it as SQLALCHEMY_DATABASE_URI to make_config."""
    if postgres is None:
        return f"sqlite:///{tmp_path / 'empty.sqlite'}"
    key = f"{tmp_path}#empty"
    if key not in _databases_by_path:
        _databases_by_path[key] = postgres.fresh(empty=True)
    return _databases_by_path[key]


def trigger_names(connection) -> set[str]:
    """The names of the triggers the schema holds (SQLite or PostgreSQL)."""
    from sqlalchemy import text

    if connection.dialect.name == "postgresql":
        query = "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal"
    else:
        query = "SELECT name FROM sqlite_master WHERE type = 'trigger'"
    return {row[0] for row in connection.execute(text(query))}


def pytest_configure(config):
    config.addinivalue_line("markers", "sqlite_only: runs only when the tests use SQLite")
    config.addinivalue_line("markers", "postgres_only: runs only when TEST_DATABASE_URL is set")


def pytest_collection_modifyitems(config, items):
    other = "sqlite_only" if postgres else "postgres_only"
    deselected = [item for item in items if item.get_closest_marker(other)]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if not item.get_closest_marker(other)]


def pytest_report_header(config):
    if postgres:
        shown = re.sub(r":[^:@/]*@", ":***@", TEST_DATABASE_URL)
        return f"database: PostgreSQL ({shown}), a fresh database per test"
    return "database: SQLite, a fresh file per test"


# A hung browser test ends the run (tests/browser/conftest.py). Under pytest-xdist it ends only
# its worker, whose output goes nowhere: the worker writes its report to the file named here,
# and the controller shows it as the test's failure and ends the run.
HANG_REPORT_KEY = "browser_hang_report"


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node):
    folder = node.config.stash.setdefault(_hang_folder, tempfile.mkdtemp(prefix="hangs-"))
    node.workerinput[HANG_REPORT_KEY] = os.path.join(folder, f"{node.gateway.id}.txt")


@pytest.hookimpl(optionalhook=True)
def pytest_handlecrashitem(crashitem, report, sched):
    path = report.node.workerinput.get(HANG_REPORT_KEY)
    if path and os.path.exists(path):
        with open(path, encoding="utf-8") as file:
            report.longrepr = file.read()
        report.user_properties.append(("hang", True))


@pytest.hookimpl(trylast=True)
def pytest_runtest_logreport(report):
    if ("hang", True) in report.user_properties:
        pytest.exit(report.longrepr.rstrip().splitlines()[-1].strip(" +"), returncode=1)


def pytest_unconfigure(config):
    folder = config.stash.get(_hang_folder, None)
    if folder:
        shutil.rmtree(folder, ignore_errors=True)


_hang_folder = pytest.StashKey[str]()


@pytest.fixture(autouse=True, scope="session")
def _postgres_template():
    yield
    if postgres:
        postgres.drop_template()


@pytest.fixture(autouse=True)
def _fresh_postgres_databases():
    yield
    if postgres:
        _close_connections()
        _databases_by_path.clear()
        postgres.drop_created()


def _close_connections() -> None:
    """Close what the test's applications left open (an app a test made itself, a connection
    a report job's thread still held): psycopg warns when the garbage collector has to."""
    import gc
    import warnings

    for engines in list(getattr(db, "_app_engines", {}).values()):
        for engine in engines.values():
            engine.dispose()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


def drop_audit_triggers() -> None:
    """Remove the append-only protection, as someone with direct database access could."""
    from sqlalchemy import text

    if db.engine.dialect.name == "postgresql":
        db.session.execute(text("DROP TRIGGER audit_events_no_change ON audit_events"))
    else:
        db.session.execute(text("DROP TRIGGER audit_events_no_update"))
        db.session.execute(text("DROP TRIGGER audit_events_no_delete"))


@pytest.fixture
def bearer(app):
    """Headers that authenticate an API request as `user`, with a new token."""
    def make(user) -> dict:
        token = accounts.issue_token(user, "tests")
        db.session.commit()
        return {"Authorization": f"Bearer {token}"}

    return make


def make_config(tmp_path, **overrides) -> dict:
    config = {
        "TESTING": True,
        "SECRET_KEY": "test-secret",
        "AUDIT_KEY": "test-audit-key-0123456789abcdef0123456789",
        "SQLALCHEMY_DATABASE_URI": test_database_uri(tmp_path),
        "DATA_DIR": str(tmp_path / "data"),
        "WTF_CSRF_ENABLED": False,
        "SIGN_IN_THROTTLE": False,
        "SESSION_COOKIE_SECURE": False,
        "REMEMBER_COOKIE_SECURE": False,
        "MAIL_BACKEND": "locmem",  # a test that reads mail runs an SMTP server (smtp_server)
    }
    config.update(overrides)
    return config


@pytest.fixture
def app_config():
    """Override in a module to change the test application's configuration."""
    return {}


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory):
    return SqliteTemplate(tmp_path_factory.mktemp("schema"))


@pytest.fixture
def app(tmp_path, app_config, sqlite_template):
    config = make_config(tmp_path, **app_config)
    copied = sqlite_template.copy_to(config["SQLALCHEMY_DATABASE_URI"])
    app = create_app(config)
    with app.app_context():
        if not copied:
            db.create_all()
        yield app
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def make_org(app):
    from governance.organisations.models import Organisation

    def make(name="Helix Pharma", kind="sponsor", **values):
        org = Organisation(name=name, kind=kind, **values)
        db.session.add(org)
        db.session.commit()
        return org

    return make


@pytest.fixture
def sponsor(make_org):
    return make_org("Helix Pharma", "sponsor", country="GB")


@pytest.fixture
def patient_group(make_org):
    return make_org("Rare Lung Alliance", "patient_group", country="GB")


@pytest.fixture
def make_user(app):
    def make(role="advocate", organisation=None, email=None, password=PASSWORD):
        user = accounts.create_user(
            email or f"{role}{make.count}@example.org", f"Test {role.title()} {make.count}",
            role, password, organisation.name if organisation else None,
        )
        make.count += 1
        db.session.commit()
        return user

    make.count = 1
    return make


@pytest.fixture
def compliance_user(make_user):
    return make_user("compliance", email="compliance@example.org")


@pytest.fixture
def make_partnership(app, sponsor, patient_group):
    from governance.partnerships.models import Partnership

    def make(title="Lung research partnership", **values):
        values.setdefault("sponsor_id", sponsor.id)
        values.setdefault("patient_group_id", patient_group.id)
        values.setdefault("kind", "content_engagement")
        values.setdefault("status", "active")
        values.setdefault("started_on", date(2024, 1, 1))
        partnership = Partnership(title=title, **values)
        db.session.add(partnership)
        db.session.commit()
        return partnership

    return make


GOOD_INTERACTION = {
    "title": "Advisory board on trial burden",
    "occurred_on": date(2025, 3, 14),
    # A workshop needs no approval before it is held (an advisory board does: PLAN-NOT-APPROVED).
    "format": "workshop",
    "purpose": "Review the visit schedule of the phase 2 protocol for participant burden and "
               "travel needs",
    "purpose_shared_on": date(2025, 2, 28),
    "product_specific": False,
    "lifecycle_stage": "phase_2",
    "patient_participants": 6,
    "caregiver_participants": 2,
    "sponsor_staff": 3,
    "selection_method": "co_created_procedure",
    "stages_represented": ["early", "intermediate", "late"],
    "stages_in_scope": ["all"],
    "protocol_followed": True,
    "materials_co_created": True,
    "facilitator": "third_party",
    "modality": "in_person",
    "venue_type": "neutral_venue",
    "venue_agreed_by_patients": True,
    "accessibility_reviewed": True,
    "accommodations": ["step_free_access", "travel_support"],
    "summary": "Participants asked for fewer site visits; the team will pilot home nursing.",
    "summary_recorded_on": date(2025, 3, 20),
    "outcomes_shared_on": date(2025, 4, 10),
}


@pytest.fixture
def make_interaction(app, compliance_user, sponsor):
    from governance.interactions import services

    def make(**values):
        data = dict(GOOD_INTERACTION, organisation_id=sponsor.id)
        if "occurred_on" in values:  # keep the documentation dates in step with the meeting
            occurred = values["occurred_on"]
            data.update(purpose_shared_on=occurred - timedelta(days=14),
                        summary_recorded_on=occurred + timedelta(days=6),
                        outcomes_shared_on=occurred + timedelta(days=27))
        data.update(values)
        interaction = services.log_interaction(data, compliance_user)
        db.session.commit()
        return interaction

    return make


def login(client, user, password=PASSWORD):
    response = client.post("/login", data={"email": user.email, "password": password})
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    return response


@pytest.fixture
def log_in(client):
    def do(user, password=PASSWORD):
        return login(client, user, password)

    return do


def lose_stored_file(store, sha256: str) -> None:
    """A stored file goes missing, as on a disk or database restored without it."""
    from sqlalchemy import delete

    from governance.storage import StoredFileRow, in_database

    if in_database():
        db.session.execute(delete(StoredFileRow).where(StoredFileRow.kind == store.kind,
                                                       StoredFileRow.sha256 == sha256))
        db.session.commit()
    else:
        store.path_of(sha256).unlink()


def stored_hashes(store) -> set[str]:
    """The SHA-256 of every file the store keeps."""
    from sqlalchemy import select

    from governance.storage import StoredFileRow, in_database

    if in_database():
        return set(db.session.scalars(select(StoredFileRow.sha256).where(
            StoredFileRow.kind == store.kind)))
    return {path.name for path in store.kept_files()}


def follow_job(client, status_url: str, timeout: float = 120) -> dict:
    """Poll a background job's JSON status, as its page does, until it ends; return the last
    (the test runs a `task_worker`)."""
    db.session.rollback()  # the test's session must not hold SQLite's write lock
    deadline, status = time.monotonic() + timeout, {}
    while time.monotonic() < deadline:
        status = client.get(status_url).get_json()
        db.session.rollback()
        if status["status"] not in ("queued", "running"):
            break
        time.sleep(0.2)
    return status


def start_task_worker(app):
    """A task worker in a thread of this process, as `flask worker` runs one: huey takes each
    task off the application's queue (a SQLite file in the data folder) and runs it. Returns
    the function that stops it."""
    import threading

    from governance.tasks import queue_of

    queue = queue_of(app)
    stopping = threading.Event()

    def work():
        while not stopping.is_set():
            task = queue.dequeue()
            if task is None:
                stopping.wait(0.05)
            else:
                queue.execute(task)

    thread = threading.Thread(target=work, name="task-worker", daemon=True)
    thread.start()

    def stop():
        stopping.set()
        thread.join(60)

    return stop


@pytest.fixture
def task_worker(app):
    stop = start_task_worker(app)
    yield
    stop()
