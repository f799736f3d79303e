"""The access matrix: every route, walked as every role and as a visitor."""

import pytest
from flask import Blueprint
from werkzeug.routing import AnyConverter, IntegerConverter

from governance.extensions import db
from governance.permissions import EVERYONE, permission_for

from .conftest import login

ROLES = ("advocate", "compliance", "auditor", "partner", "admin")
SKIP_ENDPOINTS = {"static", "bootstrap.static"}
GENERIC_REFUSAL = "You don't have the permission to access the requested resource"


@pytest.fixture
def demo(app):
    from governance.demo import seed_demo

    seed_demo()
    db.session.commit()
    return app


def get_routes(app):
    """Every GET route, with the first record's id wherever the URL needs one."""
    for rule in app.url_map.iter_rules():
        if rule.endpoint in SKIP_ENDPOINTS or "GET" not in rule.methods:
            continue
        values = {arg: example_value(arg, converter)
                  for arg, converter in rule._converters.items()}
        with app.test_request_context():
            from flask import url_for

            yield rule.endpoint, url_for(rule.endpoint, **values)


STRING_EXAMPLES = {"entity": "interaction", "side": "sponsor", "kind": "pdf"}


def example_value(name, converter):
    """The first record's id, or the first allowed word, for one URL part."""
    if isinstance(converter, AnyConverter):
        return sorted(converter.items)[0]
    if isinstance(converter, IntegerConverter):
        return 1
    return STRING_EXAMPLES.get(name, "1")


def demo_user(role):
    from governance.auth.services import find_user

    return find_user(f"{role}@demo.example")


@pytest.mark.parametrize("role", ROLES)
def test_each_role_reaches_exactly_its_declared_routes(demo, role):
    client = demo.test_client()
    login(client, demo_user(role), "demo-password-2026")
    checked = 0
    for endpoint, url in get_routes(demo):
        allowed = allowed_roles_for_endpoint(demo, endpoint)
        response = client.get(url)
        status = response.status_code
        if allowed == EVERYONE or role in allowed.roles:
            # A record-level refusal (e.g. the other side's exercise) explains itself;
            # only a role refusal answers with the generic message.
            assert GENERIC_REFUSAL.encode() not in response.get_data(), \
                f"{role} refused at {url}"
            assert status < 500, f"{role} crashed {url}: {status}"
        else:
            expected = 401 if url.startswith("/api/") else 403
            assert status == expected, f"{role} got {status} at {url}, expected {expected}"
        checked += 1
    assert checked > 20


def test_visitor_reaches_only_public_routes(demo):
    client = demo.test_client()
    for endpoint, url in get_routes(demo):
        allowed = allowed_roles_for_endpoint(demo, endpoint)
        response = client.get(url)
        if allowed == EVERYONE:
            assert response.status_code < 400 or response.status_code == 404, url
        elif url.startswith("/api/"):
            assert response.status_code == 401, url
        else:
            assert response.status_code in (302, 403), url
            if response.status_code == 302:
                assert "/login" in response.headers["Location"]


def allowed_roles_for_endpoint(app, endpoint):
    with app.test_request_context():
        return permission_for(endpoint, "GET")


def test_every_route_declares_who_may_use_it(app):
    undeclared = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint in SKIP_ENDPOINTS:
            continue
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            with app.test_request_context():
                if permission_for(rule.endpoint, method) is None:
                    undeclared.append(f"{method} {rule.rule}")
    assert undeclared == []


def test_a_route_that_declares_nothing_refuses_everyone(tmp_path):
    from governance import create_app

    from .conftest import make_config

    app = create_app(make_config(tmp_path))
    extra = Blueprint("extra", __name__)

    @extra.route("/forgotten")
    def forgotten():
        return "secret"

    app.register_blueprint(extra)
    with app.app_context():
        db.create_all()
        from governance.auth.services import create_user

        user = create_user("c@example.org", "C", "compliance", "long enough pw")
        db.session.commit()
        client = app.test_client()
        assert client.get("/forgotten").status_code == 403
        login(client, user, "long enough pw")
        assert client.get("/forgotten").status_code == 403
        db.session.remove()


def test_partner_cannot_reach_another_partnership_by_guessing_ids(demo):
    from governance.interactions.models import Interaction
    from governance.partnerships.models import Partnership

    partner = demo_user("partner")
    client = demo.test_client()
    login(client, partner, "demo-password-2026")
    theirs = db.session.scalars(db.select(Partnership).where(
        Partnership.patient_group_id == partner.organisation_id)).all()
    others = db.session.scalars(db.select(Partnership).where(
        Partnership.patient_group_id != partner.organisation_id,
        Partnership.sponsor_id != partner.organisation_id)).all()
    assert theirs and others
    assert client.get(f"/partnerships/{theirs[0].id}").status_code == 200
    for partnership in others:
        assert client.get(f"/partnerships/{partnership.id}").status_code == 404
    foreign = db.session.scalars(db.select(Interaction).where(
        Interaction.partnership_id == others[0].id)).first()
    assert client.get(f"/interactions/{foreign.id}").status_code == 404
    listing = client.get("/interactions/").get_data(as_text=True)
    assert foreign.title not in listing or any(
        i.title == foreign.title for i in db.session.scalars(db.select(Interaction).where(
            Interaction.partnership_id.in_([p.id for p in theirs]))))


def test_the_visibility_shortcuts_agree_with_the_scopes_queries(demo):
    """Records shown to a user without the scope's query are exactly those the query allows."""
    from sqlalchemy import select, update

    from governance.interactions.models import Interaction
    from governance.partnerships.models import Partnership
    from governance.permissions import interaction_scope, partnership_scope, visible_record

    # some voided records too: the shortcuts must never let those through
    for model in (Interaction, Partnership):
        db.session.execute(update(model).where(model.id % 7 == 0)
                           .values(voided_at=model.created_at, void_reason="test"))
    db.session.commit()
    compared = 0
    for role in ROLES:
        user = demo_user(role)
        for model, scope in ((Interaction, interaction_scope), (Partnership, partnership_scope)):
            allowed = set(db.session.scalars(select(model.id).where(scope(user))))
            for record_id in db.session.scalars(select(model.id)):
                db.session.expire_all()
                shown = visible_record(model, record_id, scope, user) is not None
                assert shown == (record_id in allowed), (role, model.__name__, record_id)
                compared += 1
    assert compared > 300
