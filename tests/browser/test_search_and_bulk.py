"""Search and bulk actions in a real browser against daphne: a search by an input value finds
exactly the matching runs, and a bulk cancel over that filter cancels exactly the counted runs
(the others keep running); two selected runs open the comparison."""

import re
import uuid
from urllib.parse import quote

import pytest
from playwright.sync_api import expect

from .conftest import api, screenshot

pytestmark = [pytest.mark.slow, pytest.mark.browser]

# Ten minutes of delay (one at the shared server's C4C_DELAY_SCALE): still going at the end.
SLOW = {
    "id": "search-bulk-slow",
    "name": "Search and bulk (slow)",
    "startNode": "wait",
    "nodes": [
        {
            "id": "wait",
            "type": "procedure",
            "procedureName": "custom.delay",
            "config": {"ms": 600000},
        }
    ],
}


def _start(server, batch: str, order: int) -> str:
    body = {"workflow": SLOW, "input": {"batch": batch, "orderId": order}, "async": True}
    return str(api(server, "/workflow/execute", body)["executionId"])


def _searched(server, batch: str) -> str:
    """The list page's URL for the runs of `batch`, as a person would share it."""
    where = 'input.batch = "' + batch + '"'
    return f"{server.url}/executions?where={quote(where)}"


def _status(server, execution_id: str) -> str:
    return str(api(server, f"/workflow/executions/{execution_id}")["execution"]["status"])


def test_a_search_by_input_finds_exactly_its_runs_and_a_bulk_cancel_cancels_exactly_them(
    shared_server, open_page
):
    batch = f"b-{uuid.uuid4().hex[:10]}"
    matching = [_start(shared_server, batch, order) for order in (1, 2, 3)]
    other = _start(shared_server, f"{batch}-other", 4)
    try:
        page = open_page(f"{shared_server.url}/executions")
        where = page.get_by_label("Where")
        where.fill(f'input.batch = "{batch}"')
        where.press("Enter")
        expect(page).to_have_url(re.compile(r"\?where=input\.batch"))
        assert "status=" not in page.url  # empty fields are left out of a shared URL
        rows = page.locator("#execution-rows tr[data-execution-id]")
        expect(rows).to_have_count(3)
        shown = set(rows.evaluate_all("rows => rows.map((r) => r.dataset.executionId)"))
        assert shown == set(matching)

        # The same URL, shared, shows the same runs.
        shared = open_page(_searched(shared_server, batch))
        expect(shared.locator("#execution-rows tr[data-execution-id]")).to_have_count(3)

        # Cancel every run matching the filter: the dialog states the filter and the count.
        page.get_by_role("button", name="Cancel all…").click()
        dialog = page.get_by_role("dialog")
        expect(dialog.locator("#bulk-summary")).to_contain_text("Cancel 3 runs?")
        expect(dialog.locator("#bulk-filter-words")).to_have_text(f'input.batch = "{batch}"')
        screenshot(page, "bulk-cancel-confirm-laptop", full_page=False)
        confirm = dialog.get_by_role("button", name="Cancel 3 runs")
        expect(confirm).to_be_focused()
        page.keyboard.press("Enter")
        expect(dialog.locator("#bulk-progress-text")).to_have_text("Done: 3 cancelled.")
        assert {_status(shared_server, run) for run in matching} == {"cancelled"}
        assert _status(shared_server, other) == "running"
        page.keyboard.press("Escape")
        expect(page.get_by_role("dialog")).to_have_count(0)
    finally:
        for run in [*matching, other]:
            if _status(shared_server, run) == "running":
                api(shared_server, f"/workflow/executions/{run}/cancel", {})


def test_runs_selected_with_the_keyboard_open_the_comparison(shared_server, open_page):
    batch = f"c-{uuid.uuid4().hex[:10]}"
    runs = [_start(shared_server, batch, order) for order in (1, 2)]
    try:
        page = open_page(_searched(shared_server, batch))
        compare = page.get_by_role("button", name="Compare")
        expect(compare).to_be_disabled()
        for run in runs:
            box = page.get_by_role("checkbox", name=f"Select run {run}")
            box.focus()
            page.keyboard.press("Space")
            expect(box).to_be_checked()
        expect(page.locator("#bulk-selected")).to_have_text("2 selected")
        expect(compare).to_be_enabled()
        compare.focus()
        page.keyboard.press("Enter")
        # The older run (started first) is A, the newer B.
        expect(page).to_have_url(re.compile(rf"/executions/compare\?a={runs[0]}&b={runs[1]}$"))
    finally:
        for run in runs:
            api(shared_server, f"/workflow/executions/{run}/cancel", {})


def test_a_row_re_rendered_live_keeps_the_keyboard_focus_on_its_checkbox(shared_server, open_page):
    """A live update replaces a run's row while its checkbox has the focus: the new row's
    checkbox takes it, so the next Space selects the run (it went nowhere before)."""
    batch = f"f-{uuid.uuid4().hex[:10]}"
    run = _start(shared_server, batch, 1)
    try:
        page = open_page(_searched(shared_server, batch))
        box = page.get_by_role("checkbox", name=f"Select run {run}")
        box.focus()
        rendered = page.locator(f'tr[data-execution-id="{run}"]').element_handle()

        api(shared_server, f"/workflow/executions/{run}/cancel", {})
        expect(page.locator(f'tr[data-execution-id="{run}"]')).to_have_attribute(
            "data-status", "cancelled"
        )
        assert rendered.evaluate("row => !row.isConnected"), "the row was patched, not replaced"

        expect(box).to_be_focused()
        page.keyboard.press("Space")
        expect(box).to_be_checked()
        expect(page.locator("#bulk-selected")).to_have_text("1 selected")
    finally:
        if _status(shared_server, run) == "running":
            api(shared_server, f"/workflow/executions/{run}/cancel", {})
