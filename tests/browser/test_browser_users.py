"""An administrator adds users without the command line; the pages pass axe-core."""

import re

from playwright.sync_api import expect

from .conftest import check_accessibility, log_in

NEW_PASSWORD = "my very own password"


def test_an_admin_invites_a_user_who_sets_their_password(page, browser, base_url):
    log_in(page, "admin")
    page.get_by_role("link", name="Add a user").first.click()
    check_accessibility(page)
    page.get_by_role("button", name="Add user").click()  # nothing filled in
    expect(page.locator("#email-error")).to_be_visible()
    check_accessibility(page)
    page.get_by_label("Email").fill("invited.person@demo.example")
    page.get_by_label("Name").fill("Invited Person")
    page.get_by_label("Role").select_option("advocate")
    page.get_by_label("Organisation", exact=True).select_option(label="Helix Pharma")
    page.get_by_label("An invitation link").check()
    page.get_by_role("button", name="Add user").click()
    expect(page.get_by_text("shown only this once")).to_be_visible()
    check_accessibility(page)
    link = page.locator("code.user-select-all").inner_text()

    other = browser.new_context(base_url=base_url)
    invitee = other.new_page()
    invitee.goto(link)
    check_accessibility(invitee)
    invitee.get_by_label("New password").fill(NEW_PASSWORD)
    invitee.get_by_label("Confirm the password").fill("not the same")
    invitee.get_by_role("button", name="Set my password").click()
    expect(invitee.locator("#password_again-error")).to_be_visible()
    check_accessibility(invitee)
    invitee.get_by_label("New password").fill(NEW_PASSWORD)
    invitee.get_by_label("Confirm the password").fill(NEW_PASSWORD)
    invitee.get_by_role("button", name="Set my password").click()
    expect(invitee).to_have_url(re.compile("/home$"))
    invitee.goto(link)
    expect(invitee.get_by_text("already been used")).to_be_visible()
    check_accessibility(invitee)
    other.close()


def test_a_user_with_a_temporary_password_chooses_their_own(page, browser, base_url):
    log_in(page, "admin")
    page.goto("/users/new")
    page.get_by_label("Email").fill("temporary.person@demo.example")
    page.get_by_label("Name").fill("Temporary Person")
    page.get_by_label("Role").select_option("auditor")
    page.get_by_label("Organisation", exact=True).select_option(label="Helix Pharma")
    page.get_by_label("A temporary password").check()
    page.get_by_role("button", name="Add user").click()
    password = page.locator("code.user-select-all").inner_text()
    page.get_by_role("link", name="Users").first.click()
    check_accessibility(page)
    page.get_by_role("link", name="Temporary Person").click()
    check_accessibility(page)

    other = browser.new_context(base_url=base_url)
    user = other.new_page()
    user.goto("/login")
    user.get_by_label("Email").fill("temporary.person@demo.example")
    user.get_by_label("Password").fill(password)
    user.get_by_role("button", name="Log in").click()
    expect(user).to_have_url(re.compile("/account/password"))
    check_accessibility(user)
    user.get_by_label("New password").fill(NEW_PASSWORD)
    user.get_by_label("Confirm the password").fill(NEW_PASSWORD)
    user.get_by_role("button", name="Save my password").click()
    expect(user).to_have_url(re.compile("/home$"))
    other.close()
