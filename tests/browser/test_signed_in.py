"""Signed in, in a real browser, on a server that requires sign-in: the login page leads on to
the page asked for, the header names the user, Execute and Re-run (the pages' own API calls,
with the session cookie and the CSRF token) work, and signing out ends it."""

import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.accounts.live import secured_server
from tests.conftest import DaphneServer

pytestmark = [pytest.mark.slow, pytest.mark.browser]

EXECUTION_URL = re.compile(r"/executions/(wf_exec_[^/#?]+)$")


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaphneServer]:
    server = secured_server(tmp_path_factory.mktemp("secured-browser-server"))
    try:
        yield server
    finally:
        server.stop()


def test_an_operator_signs_in_executes_reruns_and_signs_out(
    secured: DaphneServer, open_page: Any
) -> None:
    page = open_page(f"{secured.url}/workflows")
    expect(page).to_have_url(f"{secured.url}/login?next=/workflows")
    page.get_by_label("Username").fill("operator")
    page.get_by_label("Password").fill("password")
    page.get_by_role("button", name="Sign in").click()

    page.wait_for_url(f"{secured.url}/workflows")
    expect(page.locator(".account-user")).to_have_text("operator")
    page.locator("#wf-simple-math-workflow [data-execute-open]").click()
    page.get_by_role("button", name="Execute", exact=True).click()
    page.wait_for_url(EXECUTION_URL)
    first = page.url
    expect(page.locator("#execution-header .status")).to_have_text(re.compile("Completed"))

    page.get_by_role("button", name="Re-run").click()
    page.wait_for_url(lambda url: bool(EXECUTION_URL.search(url)) and url != first)
    expect(page.locator("#execution-header .status")).to_have_text(re.compile("Completed"))

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{secured.url}/login")
    page.goto(f"{secured.url}/executions")
    expect(page).to_have_url(f"{secured.url}/login?next=/executions")
