"""The timeline, trace and node progress of a run that is still going, in real Chromium.

`long-running-workflow` runs in ~6 s on the shared server (delays scaled by 0.1): its first
nodes end while later ones still run, so the page must show their spans, an open bar for the
running node, and counts that move, before the run ends.
"""

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import api, screenshot

pytestmark = pytest.mark.slow

RUNNING = re.compile("Running")


def _start_long_run(server) -> str:
    started = api(
        server, "/workflow/execute", {"workflowId": "long-running-workflow", "async": True}
    )
    return str(started["executionId"])


def _done(text: str) -> int:
    found = re.match(r"(\d+) of 10 done", text)
    assert found, text
    return int(found.group(1))


def _watch_progress(page) -> None:
    """Every text the header's count shows from now on, in order, in window.seen (the header is
    re-rendered too: watch all of it)."""
    page.evaluate(
        """() => {
            const header = document.getElementById("execution-header");
            window.seen = [header.querySelector("[data-progress]").textContent];
            new MutationObserver(() => {
                const text = header.querySelector("[data-progress]")?.textContent;
                if (text && text !== window.seen[window.seen.length - 1]) window.seen.push(text);
            }).observe(header, { subtree: true, childList: true, characterData: true });
        }"""
    )


def test_timeline_shows_bars_for_the_first_nodes_while_the_run_goes_on(shared_server, open_page):
    execution_id = _start_long_run(shared_server)
    page = open_page(f"{shared_server.url}/executions/{execution_id}#timeline")
    status = page.locator("#execution-header .status")
    timeline = page.locator("#panel-timeline")

    # "settle" waits two (scaled) seconds near the end: by then the first nodes' spans are drawn,
    # and settle is an open bar growing to now, while the run is still going.
    settle = timeline.locator('.tl-row.tl-open[data-node-id="settle"]')
    expect(settle).to_be_visible(timeout=15_000)
    expect(status).to_have_text(RUNNING)
    # The trace tree grows with it (the tab is hidden: its rows are there all the same).
    expect(page.locator("#panel-trace .trace-row.trace-open")).to_have_count(1)
    for node in ("start", "warm-up", "fetch-data"):
        expect(
            timeline.locator(f'.tl-row:not(.tl-open)[data-node-id="{node}"]').first
        ).to_be_visible()
    width = settle.locator(".tl-bar").bounding_box()["width"]
    page.wait_for_timeout(500)
    assert settle.locator(".tl-bar").bounding_box()["width"] > width
    screenshot(page, "timeline-live-light-laptop", full_page=False)

    page.get_by_role("tab", name=re.compile("Trace")).click()
    trace = page.locator("#panel-trace")
    expect(trace.locator(".trace-row").filter(has_text="warm-up").first).to_be_visible()

    # At the end, every stored span is a row and no bar is left open.
    expect(status).to_have_text(re.compile("Completed"), timeout=30_000)
    spans = api(shared_server, f"/workflow/executions/{execution_id}")["execution"]["spans"]
    expect(trace.locator(".trace-row")).to_have_count(len(spans))
    page.get_by_role("tab", name=re.compile("Timeline")).click()
    expect(timeline.locator(".tl-row")).to_have_count(len(spans))
    expect(timeline.locator(".tl-open")).to_have_count(0)


def test_node_progress_counts_move_on_the_list_and_the_detail_page(shared_server, open_page):
    listing = open_page(f"{shared_server.url}/executions")
    expect(listing.locator("#connection")).to_have_attribute("data-state", "live")
    execution_id = _start_long_run(shared_server)
    page = open_page(f"{shared_server.url}/executions/{execution_id}")

    progress = page.locator("#execution-header [data-progress]")
    expect(progress).to_have_text(re.compile(r"^\d+ of 10 done, \d running$"))
    _watch_progress(page)

    cell = listing.locator(f'tr[data-execution-id="{execution_id}"] td.col-nodes')
    expect(cell).to_have_attribute("title", re.compile(r"^\d+ of 10 done, \d running$"))
    expect(cell.locator(".running-count")).to_be_visible()
    expect(page.locator("#execution-header .status")).to_have_text(
        re.compile("Completed"), timeout=30_000
    )
    expect(progress).to_have_text("10 of 10 done")
    expect(cell).to_have_text("10/10", timeout=10_000)
    seen = page.evaluate("window.seen")
    done = [_done(text) for text in seen]
    assert done == sorted(done), seen
    moving = {count for count, text in zip(done, seen, strict=True) if "running" in text}
    assert len(moving) >= 2, f"the count did not move while the run went on: {seen}"


def test_an_answer_read_before_later_node_events_never_takes_the_page_back(shared_server, new_page):
    """The catch-up on connect is read, then held back while node events move the page on:
    applied late, it must not undo them (the count stepping 4 -> 3 -> 4 under load)."""
    execution_id = _start_long_run(shared_server)
    page = new_page()
    held: list[tuple[Any, Any]] = []

    def hold_the_first(route: Any) -> None:
        if held:
            route.continue_()
        else:
            held.append((route, route.fetch()))

    page.route(re.compile(rf"/executions/{execution_id}/live$"), hold_the_first)
    page.goto(f"{shared_server.url}/executions/{execution_id}")
    for _ in range(100):
        if held:
            break
        page.wait_for_timeout(50)
    assert held, "the page never asked for its live data"
    route, answer = held[0]
    stale = sum(
        detail["status"] in ("completed", "failed") for detail in answer.json()["nodes"].values()
    )
    _watch_progress(page)
    page.wait_for_function(
        f"""() => parseInt(document.querySelector("#execution-header [data-progress]")
            .textContent) > {stale}""",
        timeout=15_000,
    )
    route.fulfill(response=answer)
    expect(page.locator("#execution-header .status")).to_have_text(
        re.compile("Completed"), timeout=30_000
    )
    expect(page.locator("#execution-header [data-progress]")).to_have_text("10 of 10 done")
    seen = page.evaluate("window.seen")
    done = [_done(text) for text in seen]
    assert done == sorted(done), seen


def test_timeline_zooms_and_pans_with_buttons_and_keys(shared_server, open_page):
    result = api(shared_server, "/workflow/execute", {"workflowId": "branching-workflow"})
    page = open_page(f"{shared_server.url}/executions/{result['executionId']}#timeline")
    timeline = page.locator("#panel-timeline .timeline")

    def window() -> tuple[float, float]:
        values = timeline.evaluate(
            "el => [el.style.getPropertyValue('--v0'), el.style.getPropertyValue('--vspan')]"
        )
        return float(values[0]), float(values[1])

    expect(timeline).to_have_attribute("style", re.compile("--vspan"))
    v0, whole = window()
    assert v0 == 0
    page.get_by_role("button", name="Zoom in").click()
    assert window()[1] < whole
    page.get_by_role("button", name="Pan right").click()
    assert window()[0] > 0
    page.get_by_role("button", name="Fit").click()
    assert window() == (0, whole)

    view = page.get_by_role("group", name="Span timeline")
    view.focus()
    page.keyboard.press("+")
    page.keyboard.press("+")
    zoomed = window()
    assert zoomed[1] < whole / 2
    page.keyboard.press("ArrowRight")
    assert window()[0] > zoomed[0]
    page.keyboard.press("-")
    assert window()[1] > zoomed[1]
    page.keyboard.press("0")
    assert window() == (0, whole)
