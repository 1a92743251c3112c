"""Compare two runs in a real browser: two runs of the branching workflow that take different
branches, opened side by side from the second run's page, with the differing nodes highlighted."""

import re

import pytest
from playwright.sync_api import expect

from .conftest import api, screenshot

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def _run_branching(server, run_input):
    body = {"workflowId": "branching-workflow", "input": run_input}
    result = api(server, "/workflow/execute", body)
    assert result["status"] == "completed"
    return result["executionId"]


def test_two_branching_runs_compared_highlight_the_node_that_took_another_branch(
    shared_server, open_page
):
    enough = _run_branching(shared_server, {})
    too_few = _run_branching(shared_server, {"minimum": 50})

    # The later run's page links to a comparison with the run before it.
    detail = open_page(f"{shared_server.url}/executions/{too_few}")
    link = detail.get_by_role("link", name="Compare with previous run")
    expect(link).to_have_attribute("href", re.compile(rf"&b={too_few}$"))

    page = open_page(f"{shared_server.url}/executions/compare?a={enough}&b={too_few}")
    expect(page.get_by_role("heading", name="Compare two runs")).to_be_visible()
    rows = page.locator(".cmp-table tbody tr")

    condition = rows.filter(has=page.locator('th a:text-is("enough-orders")'))
    expect(condition).to_have_class(re.compile(r"\bdiffers\b"))
    expect(condition).to_contain_text("output")
    highlight = condition.locator("th").evaluate("el => getComputedStyle(el).boxShadow")
    assert "inset" in highlight
    expect(rows.filter(has=page.locator('th a:text-is("score")'))).to_contain_text("ran only in A")
    expect(rows.filter(has=page.locator('th a:text-is("too-few")'))).to_contain_text(
        "ran only in B"
    )

    # The condition's output diff names the branch each run took.
    details = page.locator('details.cmp-detail[data-node-id="enough-orders"]')
    expect(details).to_have_attribute("open", "")
    changed = details.locator(".jd-changed", has_text='"branch"')
    expect(changed.locator("del")).to_have_text('"analyse"')
    expect(changed.locator("ins")).to_have_text('"too-few"')

    # Both runs on one axis: the whole run and each node that ran has its bars.
    expect(page.locator(".cmp-tl-run .cmp-bar-a")).to_have_count(1)
    expect(page.locator(".cmp-tl-run .cmp-bar-b")).to_have_count(1)
    expect(page.locator('.cmp-tl-row[data-node-id="too-few"] .cmp-bar-b')).to_have_count(1)
    expect(page.locator('.cmp-tl-row[data-node-id="too-few"] .cmp-bar-a')).to_have_count(0)

    screenshot(page, "compare-top-light-laptop", full_page=False)

    # Keyboard: the node's link moves focus to its details, with a visible outline.
    node_link = condition.locator("th a")
    node_link.focus()
    assert node_link.evaluate("el => getComputedStyle(el).outlineStyle") != "none"
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"#cmp-node-\d+$"))
    screenshot(page, "compare-light-laptop", full_page=False)


def test_compare_reads_on_a_phone_in_dark_mode_and_filters_to_differing_nodes(
    shared_server, open_page
):
    first = _run_branching(shared_server, {})
    second = _run_branching(shared_server, {})
    page = open_page(
        f"{shared_server.url}/executions/compare?a={first}&b={second}",
        viewport="phone",
        scheme="dark",
    )
    same = page.locator('.cmp-table tr[data-differs="false"]')
    expect(same.first).to_be_visible()
    # Nothing wider than the phone but the panels that scroll inside themselves.
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

    only = page.get_by_label("Show only nodes that differ")
    only.focus()
    page.keyboard.press("Space")
    expect(only).to_be_checked()
    expect(same.first).to_be_hidden()
    screenshot(page, "compare-dark-phone", full_page=True)
