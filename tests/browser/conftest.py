"""Browser tests: the real application on 127.0.0.1 with the demo data, driven in Debian's
headless Chromium by Playwright for Python. One server and one browser serve the whole session;
each test gets a fresh browser context (its own cookies), so tests do not share a login.

Screenshots go to a temporary folder, or to $SCREENSHOT_DIR when set (`make screenshots` sets it
to docs/screenshots, so the README shows what the tests saw).
"""

import gc
import os
import re
import shutil
import sys
import threading
import traceback
from pathlib import Path

import greenlet
import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect, sync_playwright
from werkzeug.serving import WSGIRequestHandler, make_server

from governance import create_app
from governance.demo import DEMO_PASSWORD, publish_demo_reports, seed_demo
from governance.extensions import db

from ..conftest import HANG_REPORT_KEY, start_task_worker

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# The machine's network is closed: no background connections, no first-run or update checks.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
ROLES = ("advocate", "compliance", "auditor", "partner", "admin")
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
AXE = Axe()


# A browser test that hangs ends the run after this long, saying where it waited, instead of
# holding up the whole run.
BROWSER_TEST_TIMEOUT_SECONDS = 300


def is_browser_test(item) -> bool:
    return "tests/browser" in str(item.fspath)


# Run before pytest-xdist reads the group marks (`--dist loadgroup`).
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Refuse to pass silently without a browser: the suite needs Debian's chromium. Under
    pytest-xdist the browser tests share one worker, so one server and one browser start."""
    browser_items = [item for item in items if is_browser_test(item)]
    if browser_items and not shutil.which(CHROMIUM):
        raise pytest.UsageError(f"{CHROMIUM} is missing: `make test` installs Debian's chromium "
                                "package (apt-get install chromium).")
    for item in browser_items:
        item.add_marker(pytest.mark.timeout(BROWSER_TEST_TIMEOUT_SECONDS, method="thread"))
        item.add_marker(pytest.mark.xdist_group("browser"))


def pytest_timeout_set_timer(item, settings):
    """pytest-timeout's thread method, reporting a hung browser test so that the end of the
    output (all a CI log may keep) names the test and the line it waited on."""
    if not is_browser_test(item):
        return None
    timer = threading.Timer(settings.timeout, report_hang_and_exit, (item, settings.timeout))
    timer.daemon = True

    def cancel():
        timer.cancel()
        timer.join()

    item.cancel_timeout = cancel  # called by pytest-timeout's pytest_timeout_cancel_timer
    timer.start()
    return True


def report_hang_and_exit(item, seconds: float) -> None:
    """Report the hang, then end the process. A pytest-xdist worker's output goes nowhere, so a
    worker leaves the report in the file its controller named, which prints it last."""
    report = hang_report(item, seconds)
    try:
        target = getattr(item.config, "workerinput", {}).get(HANG_REPORT_KEY)
        if target:
            Path(target).write_text(report, encoding="utf-8")
        else:
            capture = item.config.pluginmanager.getplugin("capturemanager")
            if capture:
                capture.suspend_global_capture(item)
            terminal = item.config.get_terminal_writer()
            terminal.write(report)
            terminal.flush()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(1)


def hang_report(item, seconds: float) -> str:
    """Every thread's stack, then the test's own (Playwright's sync calls wait in a greenlet,
    so the main thread's stack does not show the test), the test's name last."""
    lines = [separator("+", f"Timeout after {seconds:g} s")]
    frames = sys._current_frames()
    for thread in threading.enumerate():
        if thread is not threading.current_thread() and thread.ident in frames:
            lines.append(separator("~", f"Thread {thread.name}"))
            lines.append("".join(traceback.format_stack(frames[thread.ident])))
    for stack in suspended_test_stacks(item):
        lines.append(separator("~", "The test was waiting here"))
        lines.append("".join(traceback.format_list(stack)))
    lines.append(separator("+", f"Timeout after {seconds:g} s: {item.nodeid}"))
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def separator(character: str, title: str, width: int = 80) -> str:
    return f" {title} ".center(width, character)


def suspended_test_stacks(item) -> list[traceback.StackSummary]:
    """The stacks of suspended greenlets that pass through the test's file, from the test on."""
    test_file = str(item.fspath)
    stacks = []
    for suspended in gc.get_objects():
        if isinstance(suspended, greenlet.greenlet) and suspended.gr_frame is not None:
            stack = traceback.extract_stack(suspended.gr_frame)
            starts = [i for i, entry in enumerate(stack) if entry.filename == test_file]
            if starts:
                stacks.append(traceback.StackSummary.from_list(stack[starts[0]:]))
    return stacks


class QuietRequestHandler(WSGIRequestHandler):
    def log_request(self, *args, **kwargs):
        pass  # the access log of hundreds of page loads would hide a failure's report


@pytest.fixture(scope="session")
def live_app(tmp_path_factory):
    """The application with the demo data, served by a thread on a free local port."""
    folder = tmp_path_factory.mktemp("live")
    app = create_app({
        "TESTING": True,
        "SECRET_KEY": "browser-test-secret",
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder / 'browser.sqlite'}",
        "DATA_DIR": str(folder / "data"),
        "SIGN_IN_THROTTLE": False,
        "SESSION_COOKIE_SECURE": False,
        "REMEMBER_COOKIE_SECURE": False,
        "MAIL_BACKEND": "locmem",
        # CSRF stays on: the browser sends the real tokens.
    })
    with app.app_context():
        db.create_all()
        seed_demo()
        db.session.commit()
        publish_demo_reports()  # last year's, on the public page
    server = make_server("127.0.0.1", 0, app, threaded=True,
                         request_handler=QuietRequestHandler)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    stop_worker = start_task_worker(app)  # report jobs run on the task queue, as in `make run`
    app.config["LIVE_URL"] = f"http://127.0.0.1:{server.server_port}"
    yield app
    stop_worker()
    server.shutdown()
    thread.join(timeout=10)
    with app.app_context():
        db.engine.dispose()


@pytest.fixture(scope="session")
def base_url(live_app) -> str:
    return live_app.config["LIVE_URL"]


@pytest.fixture(scope="session")
def browser():
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def context(browser, base_url):
    context = browser.new_context(base_url=base_url, viewport={"width": 1280, "height": 900},
                                  accept_downloads=True)
    context.set_default_timeout(8_000)
    yield context
    context.close()


@pytest.fixture
def page(context):
    """A page that fails the test on any script error or Content-Security-Policy refusal."""
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda message: problems.append(message.text)
            if message.type == "error" and _is_page_problem(message.text) else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    yield page
    assert not problems, f"the browser reported: {problems}"


def _is_page_problem(text: str) -> bool:
    # Error pages (403, 404) are logged by Chromium as failed loads; those are asserted on
    # where they are expected. Everything else (CSP refusals, script errors) is a problem.
    return "Failed to load resource" not in text


@pytest.fixture
def db_query(live_app):
    """Run a function against the live database from the test (its own app context)."""

    def run(function):
        with live_app.app_context():
            try:
                return function(db.session)
            finally:
                db.session.remove()

    return run


def log_in(page: Page, role: str, password: str = DEMO_PASSWORD) -> None:
    page.goto("/login")
    page.get_by_label("Email").fill(f"{role}@demo.example")
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/home$"))


@pytest.fixture
def logged_in(page):
    def do(role: str) -> Page:
        log_in(page, role)
        return page

    return do


# axe-core reads colours as they are painted: a button caught in its colour transition (the
# pointer left over it by the last click) reads as a contrast failure of a state nobody sees.
# The page's CSP refuses a <style> element; the CSSOM is not refused.
SETTLED_COLOURS = """() => {
    for (const element of document.querySelectorAll("*")) {
        element.style.setProperty("transition", "none", "important");
    }
}"""


def check_accessibility(page: Page) -> None:
    """Run axe-core's WCAG 2.1 A and AA rules on the page; any violation fails the test. The
    page is checked once it has loaded with its stylesheets: read mid-load, the navigation bar's
    light links sit on the white of a page without its colours."""
    page.wait_for_load_state("load")
    page.evaluate(SETTLED_COLOURS)
    results = AXE.run(page, options={"runOnly": {"type": "tag", "values": WCAG_TAGS},
                                     "resultTypes": ["violations"]})
    assert results.violations_count == 0, f"{page.url}\n{results.generate_report()}"


SCREENSHOT_MAX_HEIGHT = 2200


def screenshot_dir() -> Path | None:
    folder = os.environ.get("SCREENSHOT_DIR")
    return Path(folder) if folder else None


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory):
    """Save a full-page screenshot under a stable name."""
    folder = screenshot_dir() or tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)

    def take(page: Page, name: str) -> Path:
        path = folder / f"{name}.png"
        height = page.evaluate("document.documentElement.scrollHeight")
        width = page.viewport_size["width"]
        # The whole page, up to a screenful and a half more (long lists are cut).
        page.screenshot(path=str(path), full_page=True, animations="disabled",
                        clip={"x": 0, "y": 0, "width": width,
                              "height": min(height, SCREENSHOT_MAX_HEIGHT)})
        return path

    return take
