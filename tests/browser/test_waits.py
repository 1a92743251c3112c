"""Waiting runs in a real browser against the session's daphne server (workflows.waits).

The server's heartbeat sweeps at the earliest due time and at least every second, so a signal
sent from the page, a sleep's end and a child's end wake the run in that process; the pages
follow it live, without a reload (`window.__notReloaded` survives).
"""

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.conftest import DaphneServer

from .conftest import api, screenshot

pytestmark = [pytest.mark.slow, pytest.mark.browser]

WAKE_TIMEOUT_MS = 20_000


def _start(server: DaphneServer, **body: Any) -> str:
    started = api(server, "/workflow/execute", {"async": True, **body})
    return str(started["executionId"])


def _detail(open_page: Any, server: DaphneServer, execution_id: str) -> Any:
    page = open_page(f"{server.url}/executions/{execution_id}")
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    page.evaluate("window.__notReloaded = true")
    return page


def _node(page: Any, node_id: str) -> Any:
    return page.locator(f'#panel-graph .node[data-node-id="{node_id}"]')


def _header_status(page: Any) -> Any:
    return page.locator("#execution-header .title-row .status")


def test_an_approval_run_waits_live_and_approve_completes_it_without_reload(
    shared_server, open_page
):
    execution_id = _start(shared_server, workflowId="approval-workflow")
    listing = open_page(f"{shared_server.url}/executions")
    expect(listing.locator("#connection")).to_have_attribute("data-state", "live")
    row = listing.locator(f'tr[data-execution-id="{execution_id}"]')
    expect(row).to_have_attribute("data-status", "waiting")
    expect(row.locator(".status")).to_have_text(re.compile("Waiting"))

    page = _detail(open_page, shared_server, execution_id)
    expect(_header_status(page)).to_have_text(re.compile("Waiting"))
    expect(page.locator("[data-waits]")).to_contain_text("Waiting for signal approval")
    expect(_node(page, "approve")).to_have_attribute("data-status", "waiting")
    expect(_node(page, "approve").locator(".node-status-word")).to_have_text("waiting")
    expect(_node(page, "decide")).to_have_attribute("data-status", "pending")
    screenshot(page, "waits-approval-waiting", full_page=False)

    page.locator("#execution-actions").get_by_role("button", name="Approve").click()
    expect(_header_status(page)).to_have_text(re.compile("Completed"), timeout=WAKE_TIMEOUT_MS)
    expect(_node(page, "approve")).to_have_attribute("data-status", "completed")
    expect(_node(page, "proceed")).to_have_attribute("data-status", "completed")
    expect(_node(page, "rejected")).to_have_attribute("data-status", "skipped")
    expect(page.locator("[data-waits]")).to_have_count(0)
    expect(page.locator("#execution-actions").get_by_role("button", name="Approve")).to_have_count(
        0
    )
    assert page.evaluate("window.__notReloaded") is True

    _node(page, "approve").click()
    expect(page.locator("#node-panel")).to_contain_text('"approved": true')
    expect(row).to_have_attribute("data-status", "completed", timeout=WAKE_TIMEOUT_MS)


def test_reject_in_the_node_panel_sends_the_decision(shared_server, open_page):
    execution_id = _start(shared_server, workflowId="approval-workflow")
    page = _detail(open_page, shared_server, execution_id)
    expect(_node(page, "approve")).to_have_attribute("data-status", "waiting")
    _node(page, "approve").click()
    panel = page.locator("#node-panel")
    expect(panel).to_contain_text("Waiting for signal approval")
    panel.get_by_role("button", name="Reject").click()

    expect(_header_status(page)).to_have_text(re.compile("Completed"), timeout=WAKE_TIMEOUT_MS)
    expect(_node(page, "rejected")).to_have_attribute("data-status", "completed")
    expect(_node(page, "proceed")).to_have_attribute("data-status", "skipped")
    expect(panel).to_contain_text('"approved": false')
    assert page.evaluate("window.__notReloaded") is True


def test_a_wait_node_takes_a_signal_sent_from_its_panel(shared_server, open_page):
    workflow = {
        "id": "browser-hold",
        "name": "Hold for a signal",
        "startNode": "hold",
        "nodes": [
            {"id": "hold", "type": "wait", "config": {"signal": "go"}, "next": "after"},
            {
                "id": "after",
                "type": "procedure",
                "procedureName": "custom.log",
                "config": {"message": "go: {{hold.note}}"},
            },
        ],
    }
    execution_id = _start(shared_server, workflow=workflow)
    page = _detail(open_page, shared_server, execution_id)
    expect(_node(page, "hold")).to_have_attribute("data-status", "waiting")
    _node(page, "hold").click()
    panel = page.locator("#node-panel")
    expect(panel.get_by_role("button", name="Approve")).to_have_count(0)
    payload = panel.get_by_label(re.compile("Send signal go"))
    payload.fill("[1]")
    panel.get_by_role("button", name="Send signal").click()
    expect(page.locator("#action-error")).to_contain_text("must be a JSON object")

    payload.fill('{"note": "from the page"}')
    panel.get_by_role("button", name="Send signal").click()
    expect(_header_status(page)).to_have_text(re.compile("Completed"), timeout=WAKE_TIMEOUT_MS)
    expect(panel).to_contain_text('"note": "from the page"')
    assert page.evaluate("window.__notReloaded") is True


def test_a_sleep_shows_sleeping_then_its_child_then_completes_live(shared_server, open_page):
    execution_id = _start(shared_server, workflowId="sleep-and-compose-workflow")
    page = _detail(open_page, shared_server, execution_id)
    expect(_node(page, "pause")).to_have_attribute("data-status", "sleeping")
    expect(_node(page, "pause").locator(".node-status-word")).to_have_text("sleeping")
    expect(page.locator("[data-waits]")).to_contain_text("Waiting until")
    page.get_by_role("tab", name=re.compile("Timeline")).click()
    sleeping = page.locator('#panel-timeline .tl-row[data-node-id="pause"] .tl-bar.status-sleeping')
    expect(sleeping).to_be_visible()
    expect(page.locator('#panel-timeline .tl-row[data-node-id="pause"] .tl-due')).to_have_count(1)
    screenshot(page, "waits-sleeping-timeline", full_page=False)
    page.get_by_role("tab", name="Graph").click()

    # The sleep ends (3 s), the child runs (waited for, or done at once), then the run ends.
    expect(_header_status(page)).to_have_text(re.compile("Completed"), timeout=WAKE_TIMEOUT_MS)
    expect(_node(page, "pause")).to_have_attribute("data-status", "completed")
    expect(_node(page, "report")).to_have_attribute("data-status", "completed")
    link = page.locator('#panel-graph a.node-child[data-child-of="math"]')
    expect(link).to_have_count(1)
    assert page.evaluate("window.__notReloaded") is True

    _node(page, "math").click()
    panel_link = page.locator("#node-panel").get_by_role("link", name=re.compile("^wf_exec_"))
    child_id = panel_link.inner_text()
    assert link.get_attribute("href") == f"/executions/{child_id}"
    panel_link.click()
    page.wait_for_url(f"**/executions/{child_id}")
    started_by = page.locator("[data-parent-run]")
    expect(started_by).to_contain_text(f"Started by {execution_id} (node math)")
    started_by.get_by_role("link").click()
    page.wait_for_url(f"**/executions/{execution_id}")

    listing = open_page(f"{shared_server.url}/executions")
    row = listing.locator(f'tr[data-execution-id="{child_id}"]')
    expect(row.locator("[data-child-of]")).to_contain_text(f"child of {execution_id}")
