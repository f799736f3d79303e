"""Schemathesis over the whole API: whatever a client sends, no operation answers a server error.

Each operation of the OpenAPI document gets a fresh database holding a record of each kind (so
generated ids find something), and each generated request is sent with the token of a compliance
officer and of an advocate. The examples are few and derived deterministically, so the run is
repeatable and stays within the normal suite's time.
"""

from datetime import date

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from governance import create_app
from governance.auth import services as accounts
from governance.extensions import db

EXAMPLES_PER_OPERATION = 12


def openapi_document() -> dict:
    """The API's OpenAPI document as a client reads it (answering it reads no database)."""
    app = create_app({"TESTING": True, "SECRET_KEY": "fuzz",
                      "SQLALCHEMY_DATABASE_URI": "sqlite://"})
    return app.test_client().get("/api/v1/openapi.json").get_json()


schema = schemathesis.openapi.from_dict(openapi_document())
# The coverage phase sends hundreds of boundary cases per operation: `schemathesis run` (see the
# README) goes through it; the suite keeps to a few generated examples per operation.
schema.config.phases.coverage.enabled = False


@pytest.fixture
def tokens(make_user, make_interaction, make_partnership, sponsor):
    """The bearer headers of a compliance officer and an advocate, over a record of each kind."""
    partnership = make_partnership(agreement_signed_on=date(2024, 1, 10))
    make_interaction(partnership_id=partnership.id, protocol_followed=False)
    headers = []
    for role in ("compliance", "advocate"):
        token = accounts.issue_token(make_user(role, sponsor), "fuzz")
        headers.append({"Authorization": f"Bearer {token}"})
    db.session.commit()
    return headers


@schema.parametrize()
@settings(max_examples=EXAMPLES_PER_OPERATION, derandomize=True, deadline=None, database=None,
          suppress_health_check=list(HealthCheck), print_blob=False)
def test_no_operation_answers_a_server_error(case, app, tokens):
    for headers in tokens:
        case.call_and_validate(app=app, headers=headers, checks=[not_a_server_error])
        db.session.rollback()  # the test's session must not hold what a request changed
