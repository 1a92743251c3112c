"""Durable runs in a real browser: Cancel, Re-run, Retry from this node, attempts, reused nodes."""

import re
import time

import pytest
from playwright.sync_api import expect

from .conftest import api, screenshot

pytestmark = [pytest.mark.slow, pytest.mark.browser]

EXECUTION_URL = re.compile(r"/executions/(wf_exec_[^/#?]+)$")


def _execution_id(url: str) -> str:
    found = EXECUTION_URL.search(url)
    assert found, url
    return found.group(1)


def test_retry_from_the_failed_node_opens_the_new_run(shared_server, open_page):
    failed = api(shared_server, "/workflow/execute", {"workflowId": "failing-workflow"})
    original = failed["executionId"]
    page = open_page(f"{shared_server.url}/executions/{original}")
    panel = page.locator("#node-panel")
    page.locator('.node[data-node-id="log"]').click()
    # Only a failed node offers it.
    expect(panel.get_by_role("button", name="Retry from this node")).to_have_count(0)

    page.locator('.node[data-status="failed"]').click()
    panel.get_by_role("button", name="Retry from this node").click()

    page.wait_for_url(lambda url: EXECUTION_URL.search(url) and original not in url)
    rerun_id = _execution_id(page.url)
    origin = page.locator("#execution-actions .rerun-of")
    expect(origin).to_contain_text(f"Re-run of {original} from node add")
    expect(page.locator("#execution-header .status")).to_have_text(re.compile("Failed"))
    detail = api(shared_server, f"/workflow/executions/{rerun_id}")["execution"]
    assert detail["rerunOf"] == original
    assert detail["rerunFromNode"] == "add"
    origin.get_by_role("link", name=original).click()
    page.wait_for_url(f"**/executions/{original}")


def test_cancel_from_the_page_asks_first_then_stops_the_run_within_two_seconds(
    shared_server, open_page
):
    started = api(
        shared_server, "/workflow/execute", {"workflowId": "long-running-workflow", "async": True}
    )
    page = open_page(f"{shared_server.url}/executions/{started['executionId']}")
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    cancel = page.get_by_role("button", name="Cancel run…")
    dialog = page.get_by_role("dialog", name="Cancel this run?")

    # By keyboard: Enter opens the confirmation on the safe choice; Escape keeps the run.
    cancel.focus()
    page.keyboard.press("Enter")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("button", name="Keep running")).to_be_focused()
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(cancel).to_be_focused()
    still = api(shared_server, f"/workflow/executions/{started['executionId']}")["execution"]
    assert still["status"] == "running"

    cancel.click()
    pressed = time.monotonic()
    dialog.get_by_role("button", name="Cancel run").click()

    expect(page.locator("#execution-header .status")).to_have_text(
        re.compile("Cancelled"), timeout=2_000
    )
    took = time.monotonic() - pressed
    assert took < 2, f"the page showed the cancel after {took:.1f} s"
    rerun = page.get_by_role("button", name="Re-run")
    expect(rerun).to_be_visible()
    expect(rerun).to_be_focused()
    expect(page.get_by_role("button", name="Cancel run…")).to_have_count(0)
    expect(page.locator('.node[data-status="running"]')).to_have_count(0)
    screenshot(page, "detail-cancelled-light-laptop")


def test_rerun_button_starts_the_run_again_and_opens_it(shared_server, open_page):
    done = api(shared_server, "/workflow/execute", {"workflowId": "simple-math-workflow"})
    page = open_page(f"{shared_server.url}/executions/{done['executionId']}")
    page.get_by_role("button", name="Re-run").click()
    page.wait_for_url(lambda url: EXECUTION_URL.search(url) and done["executionId"] not in url)
    expect(page.locator("#execution-header .status")).to_have_text(re.compile("Completed"))
    expect(page.locator("#execution-actions .rerun-of")).to_contain_text(
        f"Re-run of {done['executionId']}"
    )


def test_a_refused_action_is_explained_on_the_page(shared_server, open_page):
    done = api(shared_server, "/workflow/execute", {"workflowId": "simple-math-workflow"})
    page = open_page(f"{shared_server.url}/executions/{done['executionId']}")
    page.route(
        "**/rerun",
        lambda route: route.fulfill(
            status=503,
            content_type="application/json",
            body='{"error": "Too many executions are running or queued; retry later"}',
        ),
    )
    page.get_by_role("button", name="Re-run").click()
    error = page.locator("#action-error")
    expect(error).to_be_visible()
    expect(error).to_have_text("Too many executions are running or queued; retry later")
    expect(page.get_by_role("button", name="Re-run")).to_be_enabled()
    assert done["executionId"] in page.url


def test_retry_workflow_attempts_are_listed_in_the_node_panel_and_timeline(
    shared_server, open_page
):
    result = api(shared_server, "/workflow/execute", {"workflowId": "retry-workflow"})
    assert result["status"] == "completed"
    page = open_page(f"{shared_server.url}/executions/{result['executionId']}")

    page.locator('.node[data-node-id="call-flaky"]').click()

    panel = page.locator("#node-panel")
    expect(panel.get_by_role("heading", name="Attempts (3)")).to_be_visible()
    attempts = panel.get_by_role("list", name="Attempts").get_by_role("listitem")
    expect(attempts).to_have_count(3)
    for index, status in enumerate(["failed", "failed", "completed"]):
        expect(attempts.nth(index)).to_contain_text(f"Attempt {index + 1}")
        expect(attempts.nth(index)).to_have_attribute("data-status", status)
    expect(attempts.nth(0)).to_contain_text("ConnectionError")
    expect(attempts.nth(0)).to_contain_text("Retry due")
    expect(attempts.nth(2)).not_to_contain_text("Retry due")
    screenshot(page, "detail-attempts-light-laptop")

    page.get_by_role("tab", name=re.compile("Timeline")).click()
    tags = page.locator("#panel-timeline .attempt-tag")
    expect(tags).to_have_text(["attempt 1", "attempt 2", "attempt 3"])


def test_reused_nodes_are_marked_in_the_graph_and_the_panel(shared_server, open_page):
    done = api(shared_server, "/workflow/execute", {"workflowId": "simple-math-workflow"})
    rerun = api(
        shared_server,
        f"/workflow/executions/{done['executionId']}/rerun",
        {"fromNode": "multiply"},
    )
    page = open_page(f"{shared_server.url}/executions/{rerun['executionId']}")
    expect(page.locator("#execution-header .status")).to_have_text(re.compile("Completed"))
    add = page.locator('.node[data-node-id="add"]')
    expect(add).to_have_attribute("data-reused", "true")
    expect(add).to_have_accessible_name(re.compile(r"^add \(procedure\).* completed \(reused\)$"))
    expect(page.locator('.node[data-node-id="multiply"]')).not_to_have_attribute(
        "data-reused", "true"
    )
    add.click()
    note = page.locator("#node-panel .reused-note")
    expect(note).to_contain_text("did not run in this execution")
    expect(note.get_by_role("link", name=done["executionId"])).to_be_visible()
