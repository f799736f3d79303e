"""Fixtures: a fresh file database per test, factories for records, and a logged-in client."""

from datetime import date

import pytest

from governance import create_app
from governance.auth import services as accounts
from governance.extensions import db

PASSWORD = "correct horse battery"


def make_config(tmp_path, **overrides) -> dict:
    config = {
        "TESTING": True,
        "SECRET_KEY": "test-secret",
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'test.sqlite'}",
        "DATA_DIR": str(tmp_path / "data"),
        "WTF_CSRF_ENABLED": False,
        "RATELIMIT_ENABLED": False,
        "SESSION_COOKIE_SECURE": False,
        "REMEMBER_COOKIE_SECURE": False,
    }
    config.update(overrides)
    return config


@pytest.fixture
def app_config():
    """Override in a module to change the test application's configuration."""
    return {}


@pytest.fixture
def app(tmp_path, app_config):
    app = create_app(make_config(tmp_path, **app_config))
    with app.app_context():
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
    "format": "advisory_board",
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
