"""An advocate logs an interaction in the browser, by mouse and by keyboard alone, and sees
what the policy flags; bad input in the browser never saves twice or loses what was typed."""

import re
import uuid

from playwright.sync_api import Page, expect
from sqlalchemy import func, select

from governance.interactions.models import Interaction

from .conftest import check_accessibility, log_in


def unique(title: str) -> str:
    return f"{title} {uuid.uuid4().hex[:6]}"


def count_titled(db_query, title: str) -> int:
    return db_query(lambda session: session.scalar(
        select(func.count(Interaction.id)).where(Interaction.title == title)))


def fill_interaction(page: Page, title: str) -> None:
    """Fill every dimension of the form the way a person would, by label."""
    general = page.get_by_role("group", name="General")
    general.get_by_label("Title").fill(title)
    general.get_by_label("Date", exact=True).fill("2025-05-20")
    general.get_by_label("Format").select_option(label="Focus group")
    general.get_by_role("group", name="Patient needs served").get_by_label("Practicality").check()

    what = page.get_by_role("group", name=re.compile("^WHAT"))
    what.get_by_label("Partnership").select_option(label="Trial design advisory programme")

    why = page.get_by_role("group", name=re.compile("^WHY"))
    why.get_by_label("Purpose", exact=True).fill(
        "Hear how the visit schedule of the phase 2 protocol burdens families who travel far")
    # Purpose shared with participants: left empty on purpose (poor practice).

    when = page.get_by_role("group", name=re.compile("^WHEN"))
    when.get_by_label("Lifecycle stage").select_option(label="Phase 2")

    who = page.get_by_role("group", name=re.compile("^WHO"))
    who.get_by_label("Patients", exact=True).fill("1")
    who.get_by_label("Caregivers").fill("0")
    who.get_by_label("Sponsor staff").fill("4")
    who.get_by_label("How participants were chosen").select_option(
        label="Co-created procedure")
    for stage in ("Early stage", "Intermediate stage", "Late stage"):
        who.get_by_role("group", name="Disease stages of the participants") \
            .get_by_label(stage, exact=True).check()
    who.get_by_role("group", name="Disease stages the discussion speaks for") \
        .get_by_label("All stages").check()

    how = page.get_by_role("group", name=re.compile("^HOW"))
    how.get_by_label("A standard protocol was followed").check()
    how.get_by_label("Forms and discussion guide were developed with patients").check()
    how.get_by_label("Facilitated by").select_option(label="Independent third party")
    how.get_by_label("Modality").select_option(label="Video")

    where = page.get_by_role("group", name=re.compile("^WHERE"))
    where.get_by_label("Venue", exact=True).select_option(label="Sponsor site")
    where.get_by_label("Access needs were reviewed beforehand").check()
    where.get_by_role("group", name="Accommodations offered").get_by_label("Remote option").check()

    doc = page.get_by_role("group", name=re.compile("^Documentation|^DOC"))
    doc.get_by_label("Summary", exact=True).fill("Families asked for fewer visits, home nursing.")
    doc.get_by_label("Summary recorded on").fill("2025-05-22")
    doc.get_by_label("Outcomes shared back on").fill("2025-06-15")


def test_advocate_logs_an_interaction_across_all_six_dimensions_and_sees_its_flags(
        page, db_query, screenshots):
    log_in(page, "advocate")
    screenshots(page, "home-advocate")
    page.get_by_role("link", name="Log an interaction").first.click()
    expect(page.get_by_role("heading", name="Log an interaction")).to_be_visible()
    check_accessibility(page)
    title = unique("Focus group on travel burden")
    fill_interaction(page, title)
    screenshots(page, "interaction-form")
    page.get_by_role("button", name="Log interaction").click()

    expect(page.get_by_role("status").filter(has_text="logged")).to_be_visible()
    expect(page.get_by_role("heading", level=1, name=title)).to_be_visible()
    review = page.get_by_role("region", name="Good-practice review")
    # Poor practice entered above: purpose not shared, 1 patient for 4 staff, a sponsor site.
    for rule in ("WHY-NOT-SHARED", "WHO-PARITY", "WHERE-SPONSOR-VENUE"):
        expect(review.get_by_text(rule)).to_be_visible()
    # Good practice entered above raises nothing.
    for rule in ("WHAT-ADHOC", "HOW-NO-PROTOCOL", "HOW-NO-PATIENT-INPUT", "WHERE-ACCESS"):
        expect(review.get_by_text(rule)).to_have_count(0)
    check_accessibility(page)
    screenshots(page, "interaction-view")
    assert count_titled(db_query, title) == 1

    # The home page lists it among the advocate's interactions, with its open flags.
    page.get_by_role("link", name="Home").click()
    row = page.get_by_role("row").filter(has_text=title)
    expect(row).to_contain_text("logged by you")
    expect(row).to_contain_text("Medium severity")
    expect(row).to_contain_text("Held at a sponsor site")


def test_a_form_with_mistakes_says_what_is_wrong_on_each_field_and_saves_nothing(page, db_query):
    log_in(page, "advocate")
    page.goto("/interactions/new")
    page.get_by_label("Title").fill("")
    page.get_by_role("button", name="Log interaction").click()
    expect(page.get_by_role("alert").filter(has_text="Nothing was saved")).to_be_visible()
    date = page.get_by_label("Date", exact=True)
    expect(date).to_have_attribute("aria-invalid", "true")
    message = page.locator(f"#{date.get_attribute('aria-describedby').split()[-1]}")
    expect(message).to_have_text(re.compile("Enter the date"))
    expect(message).to_have_attribute("role", "alert")
    check_accessibility(page)


def tab_to(page: Page, name: str, limit: int = 120) -> None:
    """Press Tab until the field called `name` has the focus (proves it is in the tab order)."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement && document.activeElement.name") == name:
            return
    raise AssertionError(f"Tab never reached the field {name!r}")


def test_the_interaction_form_works_by_keyboard_alone(page, db_query):
    log_in(page, "advocate")
    page.goto("/interactions/new")
    title = unique("Keyboard-only listening session")
    tab_to(page, "title")
    page.keyboard.type(title)
    tab_to(page, "occurred_on")
    page.keyboard.type("05202025")  # the date control's month, day, year segments
    tab_to(page, "format")
    page.keyboard.press("End")  # the last format: Other
    tab_to(page, "patient_needs")
    page.keyboard.press("Space")
    tab_to(page, "partnership_id")
    page.keyboard.press("ArrowDown")  # the first partnership
    tab_to(page, "purpose")
    page.keyboard.type("Listen to what carers need from the home-visit pilot before it is "
                       "designed")
    tab_to(page, "patient_participants")
    page.keyboard.press("Control+A")
    page.keyboard.type("6")
    tab_to(page, "sponsor_staff")
    page.keyboard.press("Control+A")
    page.keyboard.type("2")
    tab_to(page, "protocol_followed")
    page.keyboard.press("Space")
    tab_to(page, "materials_co_created")
    page.keyboard.press("Space")
    tab_to(page, "accessibility_reviewed")
    page.keyboard.press("Space")
    tab_to(page, "summary")
    page.keyboard.type("Carers want evening visits.")
    # Tab on to the submit button, then press Enter.
    for _ in range(20):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.type") == "submit":
            break
    page.keyboard.press("Enter")

    expect(page.get_by_role("heading", level=1, name=title)).to_be_visible()
    saved = db_query(lambda session: session.scalars(
        select(Interaction).where(Interaction.title == title)).one())
    assert saved.occurred_on.isoformat() == "2025-05-20"
    assert saved.format == "other"
    assert saved.patient_needs and saved.partnership_id is not None
    assert (saved.patient_participants, saved.sponsor_staff) == (6, 2)
    assert saved.protocol_followed and saved.materials_co_created and saved.accessibility_reviewed
    assert saved.summary == "Carers want evening visits."


def test_double_clicking_submit_logs_the_interaction_once(page, db_query):
    log_in(page, "advocate")
    page.goto("/interactions/new")
    title = unique("Double-clicked advisory board")
    page.get_by_label("Title").fill(title)
    page.get_by_label("Date", exact=True).fill("2025-04-02")
    page.get_by_role("button", name="Log interaction").dblclick()
    expect(page.get_by_role("heading", level=1, name=title)).to_be_visible()
    assert count_titled(db_query, title) == 1


def test_the_same_form_sent_twice_at_once_is_saved_once(page, db_query):
    """Without the page's script (two requests racing with one form token), still one record."""
    log_in(page, "advocate")
    page.goto("/interactions/new")
    title = unique("Racing submissions")
    page.get_by_label("Title").fill(title)
    page.get_by_label("Date", exact=True).fill("2025-04-03")
    landed = page.evaluate("""async () => {
        const form = document.querySelector('main form[method=post]');
        const send = () => fetch(form.action, {method: 'POST', body: new FormData(form)});
        const answers = await Promise.all([send(), send()]);
        return answers.map(a => new URL(a.url).pathname);
    }""")
    assert count_titled(db_query, title) == 1
    interaction_id = db_query(lambda session: session.scalar(
        select(Interaction.id).where(Interaction.title == title)))
    # Both land on the one interaction: the repeat is sent where the first one went.
    assert landed == [f"/interactions/{interaction_id}"] * 2


def test_going_back_after_saving_does_not_send_the_form_again(page, db_query):
    log_in(page, "advocate")
    page.goto("/interactions/new")
    title = unique("Back button workshop")
    page.get_by_label("Title").fill(title)
    page.get_by_label("Date", exact=True).fill("2025-04-04")
    page.get_by_role("button", name="Log interaction").click()
    expect(page.get_by_role("heading", level=1, name=title)).to_be_visible()

    page.go_back()  # no "confirm form resubmission": the form page is an ordinary GET
    expect(page.get_by_role("heading", name="Log an interaction")).to_be_visible()
    assert count_titled(db_query, title) == 1
    page.go_forward()
    expect(page.get_by_role("heading", level=1, name=title)).to_be_visible()
    page.reload()
    expect(page.get_by_role("heading", level=1, name=title)).to_be_visible()
    assert count_titled(db_query, title) == 1


def test_a_page_brought_back_and_sent_again_is_not_saved_twice(page, db_query):
    log_in(page, "advocate")
    page.goto("/interactions/new")
    title = unique("Resent from history")
    page.get_by_label("Title").fill(title)
    page.get_by_label("Date", exact=True).fill("2025-04-05")
    token = page.locator("input[name=form_token]").input_value()
    page.get_by_role("button", name="Log interaction").click()
    expect(page.get_by_role("heading", level=1, name=title)).to_be_visible()
    # The same filled-in form, token and all, sent again (as a restored page would be).
    page.go_back()
    page.evaluate("""([title, token]) => {
        const form = document.querySelector('main form[method=post]');
        form.querySelector('[name=title]').value = title;
        form.querySelector('[name=occurred_on]').value = '2025-04-05';
        form.querySelector('[name=form_token]').value = token;
        form.submit();
    }""", [title, token])
    expect(page.get_by_role("status").filter(has_text="already been sent")).to_be_visible()
    expect(page.get_by_role("heading", level=1, name=title)).to_be_visible()
    assert count_titled(db_query, title) == 1


def test_a_session_that_ended_mid_form_keeps_what_was_typed(page, context, db_query):
    log_in(page, "advocate")
    page.goto("/interactions/new")
    title = unique("Typed before the session ended")
    page.get_by_label("Title").fill(title)
    page.get_by_label("Date", exact=True).fill("2025-04-06")
    page.get_by_label("Purpose", exact=True).fill("Agree the agenda of the next listening "
                                                  "session with the carers' panel")
    page.get_by_label("Patients", exact=True).fill("7")
    page.get_by_role("group", name="Accommodations offered").get_by_label("Interpretation").check()

    # Meanwhile the person signs out in another tab: this page's session is over.
    other = context.new_page()
    other.goto("/home")
    other.get_by_role("button", name="Log out").click()
    expect(other).to_have_url(re.compile("/login"))
    # Closed once the login page has loaded: Chromium can leave the close of a page in the
    # middle of loading unanswered, and Page.close has no timeout.
    other.wait_for_load_state("load")
    other.close()

    page.get_by_role("button", name="Log interaction").click()
    expect(page).to_have_url(re.compile("/login"))
    expect(page.get_by_role("alert").filter(has_text="nothing was saved")).to_be_visible()
    assert count_titled(db_query, title) == 0
    page.get_by_label("Email").fill("advocate@demo.example")
    page.get_by_label("Password").fill("demo-password-2026")
    page.get_by_role("button", name="Log in").click()

    expect(page).to_have_url(re.compile("/interactions/new$"))
    expect(page.get_by_role("status").filter(has_text="filled back in")).to_be_visible()
    expect(page.get_by_label("Title")).to_have_value(title)
    expect(page.get_by_label("Date", exact=True)).to_have_value("2025-04-06")
    expect(page.get_by_label("Patients", exact=True)).to_have_value("7")
    expect(page.get_by_role("group", name="Accommodations offered")
           .get_by_label("Interpretation")).to_be_checked()
    assert count_titled(db_query, title) == 0  # nothing saved until the person sends it
    page.get_by_role("button", name="Log interaction").click()
    expect(page.get_by_role("heading", level=1, name=title)).to_be_visible()
    assert count_titled(db_query, title) == 1
