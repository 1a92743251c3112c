"""Logs per node in the node panel, in real Chromium against daphne.

`long-running-workflow` runs in ~6 s on the shared server (delays scaled by 0.1). Its `settle`
node waits two (scaled) seconds: custom.delay logs "Waiting 20000 ms" as it starts and "Still
waiting" a second later, so both lines must appear in the open panel while the run goes on.
"""

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import api, screenshot

pytestmark = pytest.mark.slow


def test_a_log_line_written_by_a_procedure_appears_in_the_node_panel_live(shared_server, open_page):
    started = api(
        shared_server, "/workflow/execute", {"workflowId": "long-running-workflow", "async": True}
    )
    page = open_page(f"{shared_server.url}/executions/{started['executionId']}")
    status = page.locator("#execution-header .status")
    page.locator('#panel-graph .node[data-node-id="settle"]').click()
    logs = page.locator("#node-panel .node-logs")
    expect(logs).to_contain_text("Nothing logged.")

    lines = logs.locator(".log-line")
    expect(lines.first).to_contain_text("Waiting 20000 ms", timeout=20_000)
    expect(status).to_have_text(re.compile("Running"))
    first = lines.first
    expect(first.locator(".log-level")).to_have_text("INFO")
    expect(first.locator("time")).to_have_text(re.compile(r"^\d\d:\d\d:\d\d\.\d{3}$"))
    # The next line comes while the node still runs: appended live, not on a reload.
    expect(lines.nth(1)).to_contain_text("Still waiting: 1 of 2 s")
    expect(status).to_have_text(re.compile("Running"))
    screenshot(page, "node-logs-live-light-laptop", full_page=False)

    expect(status).to_have_text(re.compile("Completed"), timeout=30_000)
    expect(lines).to_have_count(2)
    expect(logs.locator("[data-log-count]")).to_have_text("2")

    # Another node's lines, and a node that logged nothing, after the run: read from the API.
    page.locator('#panel-graph .node[data-node-id="start"]').click()
    expect(logs.locator(".log-line")).to_have_text(
        [re.compile("INFO\\s+Long-running workflow started")]
    )
    page.locator('#panel-graph .node[data-node-id="crunch"]').click()
    expect(logs).to_contain_text("Nothing logged.")
    expect(logs.locator(".log-line")).to_have_count(0)


def test_a_finished_runs_node_panel_reads_its_logs(shared_server, open_page):
    done = api(shared_server, "/workflow/execute", {"workflowId": "long-running-workflow"})
    page = open_page(f"{shared_server.url}/executions/{done['executionId']}", scheme="dark")
    page.locator('#panel-graph .node[data-node-id="warm-up"]').focus()
    page.keyboard.press("Enter")
    line = page.locator("#node-panel .node-logs .log-line")
    expect(line).to_have_count(1)
    expect(line).to_contain_text("Waiting 10000 ms")
    screenshot(page, "node-logs-dark-laptop", full_page=False)
