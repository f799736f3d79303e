"""The journeys of compliance, prioritisation, reports and partners, as people make them."""

import re

from playwright.sync_api import Page, expect
from sqlalchemy import func, select

from governance.interactions.models import Interaction
from governance.organisations.models import Organisation
from governance.rules.models import Flag

from .conftest import check_accessibility, log_in


def interaction_to_review(session) -> tuple[int, str, str, int]:
    """An interaction of Helix Pharma (the demo compliance officer's organisation) with two or
    three open flags, not signed off: (id, title, one of its rules, how many are open)."""
    open_flags = (select(Flag.interaction_id, func.count(Flag.id).label("open"),
                         func.min(Flag.rule_id).label("rule"))
                  .where(Flag.state == "open", Flag.interaction_id.is_not(None),
                         Flag.voided_at.is_(None))
                  .group_by(Flag.interaction_id).subquery())
    row = session.execute(
        select(Interaction.id, Interaction.title, open_flags.c.rule, open_flags.c.open)
        .join(open_flags, open_flags.c.interaction_id == Interaction.id)
        .join(Organisation, Organisation.id == Interaction.organisation_id)
        .where(open_flags.c.open.between(2, 3), Interaction.signed_off_at.is_(None),
               Interaction.partnership_id.is_not(None), Organisation.name == "Helix Pharma")
        .order_by(open_flags.c.open, Interaction.id)
    ).first()
    assert row is not None, "the demo data has an interaction with two or three open flags"
    return row.id, row.title, row.rule, row.open


def resolve_first_open_flag(page: Page, state_label: str, note: str) -> None:
    flags = page.get_by_role("region", name=re.compile("^Flags of this interaction"))
    flags.get_by_role("listitem").filter(has=page.get_by_text("Open", exact=True)) \
        .first.get_by_role("link").click()
    expect(page.get_by_role("heading", name="Resolve this flag")).to_be_visible()
    page.get_by_label(state_label).check()
    page.get_by_label("Justification or reason").fill(note)
    page.get_by_role("button", name="Save the resolution").click()
    expect(page.get_by_role("status").filter(has_text=re.compile("Flag .* (acknowledged|"
                                                                 "dismissed)"))).to_be_visible()


def test_compliance_works_flags_through_to_sign_off(page, db_query, screenshots):
    interaction_id, title, rule, open_count = db_query(interaction_to_review)
    log_in(page, "compliance")
    page.get_by_role("link", name="Open the review queue").click()
    expect(page.get_by_role("heading", name="Review queue")).to_be_visible()

    # Narrow the queue to one rule, then open the interaction's review from its row.
    page.get_by_label("Rule").select_option(value=rule)
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(f"rule={rule}"))
    page.get_by_role("link", name=title).first.click()
    expect(page.get_by_role("heading", name=f"Review: {title}")).to_be_visible()
    expect(page.get_by_role("heading", name=f"Flags of this interaction ({open_count} open)")) \
        .to_be_visible()
    expect(page.get_by_text(f"Resolve the {open_count} open flags above before signing off")) \
        .to_be_visible()

    resolutions = [
        ("Acknowledge — keep the practice, with a justification",
         "Agreed with the patient group in advance; recorded in the minutes."),
        ("Dismiss — the rule does not apply here, with a reason",
         "The rule does not apply: this was a remote session by design."),
    ]
    for number in range(open_count):
        resolve_first_open_flag(page, *resolutions[number % 2])
        if number == 0:
            check_accessibility(page)
        page.get_by_role("link", name=title).click()
    expect(page.get_by_role("heading", name="Flags of this interaction (0 open)")).to_be_visible()

    # A wrong password is refused on the field, and announced.
    page.get_by_label(re.compile("^Reviewed:")).check()
    page.get_by_label("Your password").fill("not my password")
    page.get_by_role("button", name="Sign off").click()
    expect(page.get_by_role("alert").first).to_be_visible()
    check_accessibility(page)

    page.get_by_label(re.compile("^Reviewed:")).check()
    page.get_by_label("Your password").fill("demo-password-2026")
    page.get_by_role("button", name="Sign off").click()
    expect(page.get_by_role("status").filter(has_text="Review signed off.").first).to_be_visible()
    expect(page.get_by_text("Signed by Colin Compliance")).to_be_visible()
    screenshots(page, "review-signed-off")
    signed = db_query(lambda session: session.get(Interaction, interaction_id).signed_off_at)
    assert signed is not None


def test_an_advocate_completes_a_prioritisation_exercise(page, screenshots):
    log_in(page, "advocate")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Partnerships").click()
    page.get_by_role("link", name="Natural-history registry").click()
    page.get_by_role("link", name=re.compile("prioriti", re.I)).first.click()
    expect(page.get_by_role("heading", name="Prioritising engagement activities")).to_be_visible()
    sponsor = page.get_by_role("region", name=re.compile("^Sponsor side"))
    sponsor.get_by_role("link", name=re.compile("^(Start|Resume)")).click()

    # Step 1: identify three activities.
    expect(page.get_by_role("heading", name=re.compile("^Step 1"))).to_be_visible()
    boxes = page.locator("main form").first.get_by_role("checkbox")
    for index in range(3):
        boxes.nth(index).check()
    page.get_by_role("button", name="Save and continue to ratings").click()

    # Step 2: rate benefit and investment of each, with a reason.
    expect(page.get_by_role("heading", name=re.compile("^Step 2"))).to_be_visible()
    ratings = [("High", "Low"), ("High", "High"), ("Low", "Moderate")]
    activities = page.locator("main form fieldset.dimension")
    expect(activities).to_have_count(3)
    for index, (benefit, investment) in enumerate(ratings):
        activity = activities.nth(index)
        activity.get_by_role("group", name="Benefit", exact=True) \
            .get_by_label(benefit, exact=True).check()
        activity.get_by_role("group", name="Investment", exact=True) \
            .get_by_label(investment, exact=True).check()
        activity.get_by_label("Rationale").fill(f"Judged {benefit.lower()} benefit for "
                                                f"{investment.lower()} investment.")
    check_accessibility(page)
    page.get_by_role("button", name="Save and continue to the matrix").click()

    # Step 3: the matrix places each activity; the side marks its exercise completed.
    expect(page.get_by_role("heading", name=re.compile("^Step 3"))).to_be_visible()
    check_accessibility(page)
    page.get_by_role("button", name="Mark this side's exercise completed").click()
    expect(page.get_by_role("status").first).to_be_visible()
    page.goto(page.url.split("/prioritisation")[0] + "/prioritisation")
    expect(page.get_by_role("region", name=re.compile("^Sponsor side"))) \
        .to_contain_text("Completed")
    screenshots(page, "prioritisation-completed")


def test_compliance_generates_a_report_and_downloads_it(page, tmp_path, screenshots):
    log_in(page, "compliance")
    page.get_by_role("navigation", name="Main").get_by_role("link", name=re.compile("Reports")) \
        .click()
    expect(page.get_by_role("heading", name="Transparency reports", level=1)).to_be_visible()
    # The methodology note comes first: every report prints it.
    page.get_by_role("link", name=re.compile("the methodology note of Helix Pharma")).click()
    expect(page.get_by_label("Methodology note")).not_to_be_empty()
    check_accessibility(page)
    page.get_by_role("button", name=re.compile("Save")).click()
    expect(page.get_by_role("heading", name="Transparency reports", level=1)).to_be_visible()

    page.get_by_label("Reporting organisation").select_option(label="Helix Pharma")
    year = page.get_by_label("Calendar year")
    year.select_option(index=2)  # the year before last: the demo published last year's
    chosen_year = year.input_value()
    page.get_by_role("button", name="Generate the draft").click()
    expect(page.get_by_role("heading", name="Preparing the draft")).to_be_visible()

    # The draft is prepared in the background; the page follows its progress and reloads.
    pdf_link = page.get_by_role("link", name="PDF of the public disclosure", exact=True)
    expect(pdf_link).to_be_visible(timeout=180_000)
    check_accessibility(page)
    screenshots(page, "report")
    with page.expect_download() as download_info:
        pdf_link.click()
    saved = tmp_path / "report.pdf"
    download_info.value.save_as(saved)
    assert saved.read_bytes().startswith(b"%PDF")
    assert chosen_year in download_info.value.suggested_filename


def test_a_partner_confirms_a_support_line_and_disputes_another(page, db_query, screenshots):
    from governance.partnerships.models import Support

    log_in(page, "partner")
    awaiting = page.get_by_role("region", name="Support lines awaiting your confirmation")
    rows = awaiting.get_by_role("row")
    before = rows.count() - 1  # less the header row
    assert before >= 2

    # Confirm the first line.
    first = rows.nth(1)
    first.get_by_role("link", name=re.compile("^Confirm or dispute")).click()
    expect(page.get_by_role("heading", name="Is this record right?")).to_be_visible()
    support_id = int(re.search(r"/support/(\d+)", page.url).group(1))
    check_accessibility(page)
    screenshots(page, "partner-confirms-support")
    page.get_by_label("Confirm: this record is right").check()
    page.get_by_role("button", name="Send my answer").click()
    expect(page.get_by_role("status").filter(has_text="your answer is recorded")).to_be_visible()
    assert db_query(lambda s: s.get(Support, support_id).confirmed_by_partner) == "confirmed"

    # A dispute needs a note saying what is wrong: without one it is refused on the field.
    page.get_by_role("link", name="Home").click()
    awaiting = page.get_by_role("region", name="Support lines awaiting your confirmation")
    expect(awaiting.get_by_role("row")).to_have_count(before)  # one line fewer, plus header
    expect(awaiting).not_to_contain_text(f"support-{support_id}")
    awaiting.get_by_role("row").nth(1).get_by_role("link").click()
    disputed_id = int(re.search(r"/support/(\d+)", page.url).group(1))
    page.get_by_label("Dispute: something in this record is wrong").check()
    page.get_by_role("button", name="Send my answer").click()
    note = page.get_by_label("Note")
    expect(note).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_role("alert").first).to_be_visible()
    check_accessibility(page)
    note.fill("We received GBP 500 less than recorded here.")
    page.get_by_role("button", name="Send my answer").click()
    expect(page.get_by_role("status").filter(has_text="dispute is recorded")).to_be_visible()
    assert db_query(lambda s: s.get(Support, disputed_id).confirmed_by_partner) == "disputed"
