"""Every page each role can reach passes axe-core's WCAG 2.1 A/AA rules, and each role reaches
only its own pages. Pages are found by following the links a person sees, from the home page,
so a page that a feature adds later is checked without anyone listing it here."""

from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import expect
from sqlalchemy import select

from governance.permissions import EVERYONE, permission_for

from .conftest import AXE, ROLES, WCAG_TAGS, log_in

# Files rather than pages: exports, images, downloads and the JSON API.
NOT_PAGES = ("export", "download", "csv", "pdf", "svg", "image", "openapi", "json")
# Each role's main pages must be among those found (the crawl cannot silently shrink).
MAIN_PAGES = {
    "advocate": {"main.home", "interactions.index", "interactions.view", "interactions.create",
                 "partnerships.index", "partnerships.view", "organisations.index",
                 "notifications.inbox"},
    "compliance": {"main.home", "interactions.index", "interactions.view", "review.queue",
                   "review.flag", "review.review", "partnerships.index", "auditing.index",
                   "rules.policy", "rules.propose", "rules.version"},
    "auditor": {"main.home", "interactions.index", "auditing.index", "partnerships.index"},
    "partner": {"main.home", "interactions.index", "partnerships.index", "partnerships.view",
                "notifications.inbox", "notifications.settings", "rules.policy", "rules.version"},
    "admin": {"main.home", "organisations.index", "organisations.view", "users.index",
              "users.edit", "users.create"},
}
# The pages shown in the README: (role, endpoint) -> file name under docs/screenshots.
SCREENSHOTS = {
    ("compliance", "main.home"): "home-compliance",
    ("partner", "main.home"): "home-partner",
    ("auditor", "main.home"): "home-auditor",
    ("admin", "main.home"): "home-admin",
    ("advocate", "interactions.index"): "interactions",
    ("compliance", "review.queue"): "review-queue",
    ("compliance", "review.flag"): "flag",
    ("compliance", "review.review"): "interaction-review",
    ("compliance", "review.dashboard"): "dashboard",
    ("advocate", "partnerships.view"): "partnership",
    ("advocate", "partnerships.supports"): "support-lines",
    ("advocate", "activities.overview"): "prioritisation",
    ("advocate", "activities.matrix"): "prioritisation-matrix",
    ("compliance", "reports.index"): "reports",
    ("auditor", "auditing.index"): "audit-trail",
    ("partner", "confirmations.confirmations"): "partner-confirmations",
}


def endpoint_of(live_app, path: str) -> str | None:
    adapter = live_app.url_map.bind("127.0.0.1")
    try:
        endpoint, _ = adapter.match(urlsplit(path).path, method="GET")
    except Exception:  # a 404, a 405 or a redirect rule: not a page to visit
        return None
    return endpoint


def is_page(path: str, endpoint: str | None) -> bool:
    if endpoint is None or endpoint in ("static", "bootstrap.static"):
        return False
    if path.startswith("/api/") or endpoint.startswith("api"):
        return False
    return not any(word in endpoint.lower() or word in urlsplit(path).path.lower()
                   for word in NOT_PAGES)


def crawl(page, live_app, start: str, on_page, limit: int = 80) -> set[str]:
    """Visit one page per endpoint reachable by links from `start`; call on_page on each."""
    visited: set[str] = set()
    queue = [start]
    while queue and len(visited) < limit:
        path = queue.pop(0)
        endpoint = endpoint_of(live_app, path)
        if endpoint in visited or not is_page(path, endpoint):
            continue
        try:
            response = page.goto(path)
        except PlaywrightError as error:  # a link that turned out to be a download
            if "Download is starting" in str(error):
                continue
            raise
        visited.add(endpoint)
        if response is None or not response.ok \
                or "text/html" not in response.headers.get("content-type", ""):
            continue
        on_page(endpoint, page)
        hrefs = page.eval_on_selector_all("a[href]", "links => links.map(a => a.href)")
        for href in hrefs:
            parts = urlsplit(href)
            if parts.netloc != urlsplit(page.url).netloc or parts.fragment and not parts.path:
                continue
            queue.append(parts.path + (f"?{parts.query}" if parts.query else ""))
    return visited


def axe_violations(page) -> list[tuple[str, str, str]]:
    """(rule and its help, the element, the page) for each violation on the page."""
    results = AXE.run(page, options={"runOnly": {"type": "tag", "values": WCAG_TAGS},
                                     "resultTypes": ["violations"]})
    path = urlsplit(page.url).path
    return [(f"{v['id']}: {v['help']}", f"{node['html']}: {node.get('failureSummary', '')}",
             path) for v in results.response["violations"] for node in v["nodes"]]


def report(problems: list[tuple[str, str, str]]) -> str:
    """One line per rule and element, with the pages it was found on."""
    grouped: dict[tuple[str, str], list[str]] = {}
    for rule, element, path in problems:
        grouped.setdefault((rule, element), []).append(path)
    return "\n".join(f"- {rule}\n    {element}\n    on {', '.join(sorted(set(paths)))}"
                     for (rule, element), paths in sorted(grouped.items()))


@pytest.mark.parametrize("role", ROLES)
def test_every_page_a_role_reaches_passes_wcag_21_aa(page, live_app, role, screenshots):
    log_in(page, role)
    problems: list[tuple[str, str, str]] = []

    def check(endpoint, current):
        problems.extend(axe_violations(current))
        name = SCREENSHOTS.get((role, endpoint))
        if name:
            screenshots(current, name)

    visited = crawl(page, live_app, "/home", check)
    missing = MAIN_PAGES[role] - visited
    assert not missing, f"{role} could not reach {sorted(missing)} by following links"
    assert not problems, report(problems)


def test_pages_without_login_pass_wcag_21_aa(page, live_app, screenshots):
    problems: list[tuple[str, str, str]] = []
    page.goto("/login")
    problems += axe_violations(page)
    screenshots(page, "login")
    page.get_by_label("Email").fill("nobody@demo.example")
    page.get_by_label("Password").fill("wrong password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert").first).to_be_visible()
    problems += axe_violations(page)
    page.goto("/no-such-page")
    problems += axe_violations(page)
    visited = crawl(page, live_app, "/public/reports/",
                    lambda endpoint, current: problems.extend(axe_violations(current)), 10)
    assert {"public_reports.index", "public_reports.view"} <= visited
    assert not problems, report(problems)


def test_the_patient_groups_report_pages_pass_wcag_21_aa(page, live_app):
    """The group's compliance officer: its report of funding received and its reconciliation
    with the companies' disclosures."""
    log_in(page, "group-compliance")
    problems: list[tuple[str, str, str]] = []
    visited = crawl(page, live_app, "/reports/",
                    lambda endpoint, current: problems.extend(axe_violations(current)), 25)
    assert {"reports.index", "reports.view", "reports.reconciliation"} <= visited
    assert not problems, report(problems)


def get_pages(live_app) -> list[tuple[str, str]]:
    """Every page (GET, no path arguments) and the endpoint that serves it."""
    found = []
    for rule in live_app.url_map.iter_rules():
        if "GET" in rule.methods and not rule.arguments and is_page(rule.rule, rule.endpoint):
            found.append((rule.rule, rule.endpoint))
    return sorted(found)


@pytest.mark.parametrize("role", ROLES)
def test_a_role_reaches_only_its_own_pages(page, live_app, role):
    log_in(page, role)
    wrong = []
    with live_app.test_request_context():
        pages = [(path, permission_for(endpoint, "GET")) for path, endpoint in
                 get_pages(live_app)]
    for path, allowed in pages:
        expected = 200 if allowed == EVERYONE or (allowed and role in allowed.roles) else 403
        status = page.request.get(path, max_redirects=0).status
        if status == 302 and expected == 200 and path in ("/", "/login"):
            continue  # the front page and the login page send a logged-in person home
        if status != expected:
            wrong.append(f"{path}: {status}, expected {expected}")
    assert not wrong, f"{role}: " + "; ".join(wrong)
    # The navigation offers only pages the role may open.
    for link in page.get_by_role("navigation", name="Main").get_by_role("link").all():
        href = link.get_attribute("href")
        assert page.request.get(href).status == 200, f"{role} is offered {href}"


def test_a_partner_sees_no_record_of_another_partnership(page, live_app, db_query):
    from governance.auth.models import User
    from governance.interactions.models import Interaction
    from governance.partnerships.models import Partnership
    from governance.permissions import partnership_scope

    def outside(session):
        partner = session.scalar(select(User).where(User.email == "partner@demo.example"))
        partnership = session.scalar(select(Partnership.id).where(
            Partnership.id.not_in(select(Partnership.id).where(partnership_scope(partner)))))
        interaction = session.scalar(select(Interaction.id).where(
            Interaction.partnership_id == partnership))
        return partnership, interaction

    partnership_id, interaction_id = db_query(outside)
    log_in(page, "partner")
    for path in (f"/partnerships/{partnership_id}", f"/interactions/{interaction_id}"):
        response = page.goto(path)
        assert response.status == 404, path
        expect(page.get_by_role("heading", level=1)).to_have_text("Not Found")
