"""Every dashboard page is usable without a mouse, in both colour schemes and on a phone.

Three checks per page, each in real Chromium against the session's daphne server:

- axe-core (vendored in tests/browser/vendor/, injected before the page's own scripts, so the
  page's Content-Security-Policy stays on) finds no serious or critical violation, in the light
  and in the dark colour scheme, on each state a person can reach: the detail page's graph,
  timeline and trace tabs, its node panel, the execute dialog, a waiting run's Approve / Reject
  and a sleeping run's timeline;
- Tab walks through every control a pointer could use, and each one it lands on shows a focus
  indicator (an outline or a box-shadow, or for a graph node its box drawn in the focus style);
- at 375 x 812 CSS pixels the page itself never scrolls sideways (wide tables and the graph
  scroll inside their own boxes), and the graph and timeline still answer a tap.
"""

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.conftest import DaphneServer

from .conftest import VIEWPORTS, api, screenshot

pytestmark = [pytest.mark.slow, pytest.mark.browser]

AXE = (Path(__file__).parent / "vendor" / "axe.min.js").read_text()
BLOCKING = ("serious", "critical")
PHONE = VIEWPORTS["small-phone"]
NO_RUNS = "no-such-workflow-a11y"

RUN_AXE = """
async () => {
  const result = await axe.run(document, { resultTypes: ["violations"] });
  return result.violations.map((v) => ({
    id: v.id,
    impact: v.impact,
    help: v.help,
    nodes: v.nodes.slice(0, 5).map((n) => `${n.target.join(" ")}: ${n.failureSummary}`),
  }));
}
"""

# A name for a control that stays the same when a live update renders it again.
CONTROL_KEY = """
const controlKey = (el) => [
  el.tagName, el.id, el.getAttribute("href"), el.getAttribute("aria-label"), el.name, el.value,
  (el.textContent || "").trim().slice(0, 40),
].join("|");
"""

# The controls a pointer could use, each by its key.
CONTROLS = (
    "() => {"
    + CONTROL_KEY
    + """
  const selector = [
    "a[href]", "button", "input:not([type=hidden])", "select", "textarea", "summary",
    "[tabindex]", "[contenteditable=true]",
  ].join(",");
  const shown = (el) => el.checkVisibility({ visibilityProperty: true }) &&
    el.getClientRects().length > 0 && !el.closest("[inert], dialog:not([open])");
  return [...document.querySelectorAll(selector)]
    .filter((el) => !el.disabled && el.tabIndex >= 0 && shown(el))
    .map(controlKey);
}
"""
)

# Tab starts from the top of the page, whatever has focus now (an autofocus field, a tab).
FROM_THE_TOP = """
() => {
  const start = document.createElement("span");
  start.tabIndex = -1;
  document.body.prepend(start);
  start.focus();
  start.addEventListener("blur", () => start.remove(), { once: true });
}
"""

# What Tab landed on, and how it shows focus: null when nothing on screen says so.
FOCUSED = (
    "() => {"
    + CONTROL_KEY
    + """
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const style = getComputedStyle(el);
  const drawn = (width, kind) => kind !== "none" && parseFloat(width) > 0;
  let indicator = null;
  if (drawn(style.outlineWidth, style.outlineStyle)) indicator = "outline";
  else if (style.boxShadow && style.boxShadow !== "none") indicator = "box-shadow";
  else if (el instanceof SVGElement) {
    const box = el.querySelector(".node-box");
    if (box && parseFloat(getComputedStyle(box).strokeWidth) >= 3) indicator = "node box";
  }
  return {
    control: controlKey(el),
    focusVisible: el.matches(":focus-visible"),
    indicator,
    html: el.outerHTML.slice(0, 120),
  };
}
"""
)

PAGE_WIDTH = "() => [document.documentElement.scrollWidth, document.body.scrollWidth, innerWidth]"


@dataclass(frozen=True)
class Runs:
    finished: str
    compare_a: str
    compare_b: str
    waiting: str  # for a person's approval (a day's timeout)
    sleeping: str  # for an hour


# A run that sleeps an hour: the page of a sleeping run stays that way while the tests look.
LONG_SLEEP = {
    "id": "a11y-long-sleep",
    "name": "Long sleep",
    "startNode": "nap",
    "nodes": [
        {"id": "nap", "type": "sleep", "config": {"durationMs": 3_600_000}, "next": "after"},
        {"id": "after", "type": "procedure", "procedureName": "custom.log"},
    ],
}


@pytest.fixture(scope="module")
def runs(shared_server: DaphneServer) -> Runs:
    def run(workflow_id: str, run_input: dict[str, Any]) -> str:
        result = api(
            shared_server, "/workflow/execute", {"workflowId": workflow_id, "input": run_input}
        )
        assert result["status"] == "completed"
        return str(result["executionId"])

    def parked(**body: Any) -> str:
        started = api(shared_server, "/workflow/execute", {"async": True, **body})
        execution_id = str(started["executionId"])
        url = f"/workflow/executions/{execution_id}"
        deadline = time.monotonic() + 15
        while api(shared_server, url)["execution"]["status"] != "waiting":
            assert time.monotonic() < deadline, f"{execution_id} did not park"
            time.sleep(0.1)
        return execution_id

    return Runs(
        finished=run("simple-math-workflow", {}),
        compare_a=run("branching-workflow", {}),
        compare_b=run("branching-workflow", {"minimum": 50}),
        waiting=parked(workflowId="approval-workflow"),
        sleeping=parked(workflow=LONG_SLEEP),
    )


def pages(runs: Runs) -> dict[str, str]:
    """Every page a person reaches, by a name for the failure messages."""
    return {
        "list with runs": "/executions",
        "list, empty": f"/executions?workflow={NO_RUNS}",
        "list, filtered": "/executions?status=completed&workflow=simple-math-workflow",
        "detail, finished": f"/executions/{runs.finished}",
        "detail, waiting for approval": f"/executions/{runs.waiting}",
        "detail, sleeping": f"/executions/{runs.sleeping}",
        "list, waiting": "/executions?status=waiting",
        "workflows": "/workflows",
        "compare": f"/executions/compare?a={runs.compare_a}&b={runs.compare_b}",
        "sign in": "/login",
        "execution not found": "/executions/wf_exec_a11y_missing",
        "page not found": "/no-such-page",
        "bad request": "/executions?status=bogus",
    }


@pytest.fixture
def axe_page(new_page: Callable[..., Any]) -> Callable[..., Any]:
    """new_page with axe loaded before the page's own scripts (the CSP stays on)."""

    def axe_page_(*, scheme: str = "light", viewport: str = "laptop") -> Any:
        return new_page(viewport=viewport, scheme=scheme, init_script=AXE)

    return axe_page_


def _open(page: Any, url: str) -> Any:
    page.goto(url, wait_until="load")
    page.wait_for_function("typeof axe === 'object'")
    return page


def _blocking(page: Any, where: str) -> list[str]:
    return [
        f"{where}: {v['impact']} {v['id']} ({v['help']})\n    " + "\n    ".join(v["nodes"])
        for v in page.evaluate(RUN_AXE)
        if v["impact"] in BLOCKING
    ]


def _box(locator: Any) -> dict[str, float]:
    """Where an element is on screen. A live list re-renders its rows (its first catch-up after
    load included), and an element replaced between finding and measuring has no box: measure
    the one there now."""
    deadline = time.monotonic() + 5
    while (box := locator.bounding_box()) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert box is not None, f"{locator} never had a box on screen"
    return dict(box)


def _open_node_panel(page: Any) -> None:
    node = page.locator("#panel-graph .node[tabindex]").first
    node.focus()
    page.keyboard.press("Enter")
    expect(page.locator("#node-panel")).not_to_contain_text("Select a node")


def _waiting_states(page: Any, where: str) -> list[str]:
    """A parked node's panel (Approve / Reject for an approval), then the timeline with its
    waiting or sleeping bar."""
    node = page.locator(
        "#panel-graph .node[data-status='waiting'], #panel-graph .node[data-status='sleeping']"
    ).first
    node.focus()
    page.keyboard.press("Enter")
    expect(page.locator("#node-panel .node-wait")).to_be_visible()
    found = _blocking(page, f"{where}, parked node panel")
    page.get_by_role("tab", name=re.compile("Timeline")).click()
    expect(page.locator("#panel-timeline .tl-open").first).to_be_visible()
    return found + _blocking(page, f"{where}, timeline")


def _detail_states(page: Any, where: str) -> list[str]:
    """The detail page's views one after the other: graph with a node open, timeline, trace."""
    _open_node_panel(page)
    found = _blocking(page, f"{where}, graph and node panel")
    for tab in ("Timeline", "Trace"):
        page.get_by_role("tab", name=re.compile(tab)).click()
        expect(page.locator(f"#panel-{tab.lower()}")).to_be_visible()
        found += _blocking(page, f"{where}, {tab.lower()}")
    return found


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_every_page_has_no_serious_axe_violation(shared_server, runs, axe_page, scheme):
    found: list[str] = []
    for name, path in pages(runs).items():
        page = _open(axe_page(scheme=scheme), shared_server.url + path)
        found += _blocking(page, name)
        if name == "detail, finished":
            found += _detail_states(page, name)
        if name.startswith("detail, waiting") or name == "detail, sleeping":
            found += _waiting_states(page, name)
        if name == "list with runs":
            page.get_by_role("button", name="Execute…").click()
            expect(page.get_by_role("dialog", name="Execute a workflow")).to_be_visible()
            found += _blocking(page, f"{name}, execute dialog")
        page.context.close()
    assert found == [], f"{scheme} scheme:\n" + "\n".join(found)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_a_running_execution_has_no_serious_axe_violation(shared_server, axe_page, scheme):
    started = api(
        shared_server, "/workflow/execute", {"workflowId": "long-running-workflow", "async": True}
    )
    page = _open(
        axe_page(scheme=scheme), f"{shared_server.url}/executions/{started['executionId']}"
    )
    expect(page.locator("#panel-graph .node[data-status='running']").first).to_be_visible()
    found = _blocking(page, "detail, running")
    found += _detail_states(page, "detail, running")
    screenshot(page, f"a11y-running-{scheme}", full_page=False)
    assert found == [], f"{scheme} scheme:\n" + "\n".join(found)


def _tab_through(page: Any) -> tuple[list[str], list[dict[str, Any]]]:
    """Tab from the top of the page until focus leaves it or comes round again; the controls
    there are and the stops Tab made.

    A live page may still be catching up when the walk starts (a node painted with the status
    its stream brought changes its label): a walk during which the controls changed is made
    again, up to three times, and the last one is judged."""
    for _ in range(3):
        controls: list[str] = page.evaluate(CONTROLS)
        stops: list[dict[str, Any]] = []
        page.evaluate(FROM_THE_TOP)
        for _ in range(len(controls) + 5):
            page.keyboard.press("Tab")
            stop = page.evaluate(FOCUSED)
            if stop is None or (stops and stop["control"] == stops[0]["control"]):
                break
            stops.append(stop)
        if page.evaluate(CONTROLS) == controls:
            break
    return controls, stops


def _keyboard_problems(page: Any, where: str) -> list[str]:
    controls, stops = _tab_through(page)
    if not stops:
        return [f"{where}: Tab stops nowhere"]
    problems = [
        f"{where}: focus not shown on {stop['html']}"
        for stop in stops
        if not stop["focusVisible"] or stop["indicator"] is None
    ]
    reached = {stop["control"] for stop in stops}
    problems += [f"{where}: Tab never reaches {key}" for key in controls if key not in reached]
    return problems


def test_tab_reaches_every_control_and_shows_where_focus_is(shared_server, runs, axe_page):
    problems: list[str] = []
    for name, path in pages(runs).items():
        page = _open(axe_page(), shared_server.url + path)
        if page.locator("#list-config").count():
            # The list renders its rows again once its stream is up: tab through those.
            expect(page.locator("#connection")).to_have_attribute("data-state", "live")
        problems += _keyboard_problems(page, name)
        if name == "detail, finished":
            for tab in ("Timeline", "Trace"):
                page.get_by_role("tab", name=re.compile(tab)).click()
                problems += _keyboard_problems(page, f"{name}, {tab.lower()}")
        page.context.close()
    assert problems == [], "\n".join(problems)


def test_a_live_update_keeps_focus_on_the_control_it_was_on(shared_server, axe_page):
    """The run's end replaces the detail page's header; a keyboard user on its JSON link stays
    there instead of being dropped to the top of the page."""
    started = api(shared_server, "/workflow/execute", {"async": True, "workflow": LONG_SLEEP})
    execution_id = started["executionId"]
    page = _open(axe_page(), f"{shared_server.url}/executions/{execution_id}")
    header = page.locator("#execution-header .exec-head")
    expect(header).to_have_attribute("data-status", re.compile("running|waiting"))
    json_link = page.get_by_role("link", name="JSON")
    json_link.focus()

    api(shared_server, f"/workflow/executions/{execution_id}/cancel", {})

    expect(header).to_have_attribute("data-status", "cancelled")
    expect(json_link).to_be_focused()


def test_keyboard_alone_opens_views_nodes_and_the_execute_dialog(shared_server, runs, axe_page):
    page = _open(axe_page(), f"{shared_server.url}/executions/{runs.finished}")
    graph_tab = page.get_by_role("tab", name="Graph")
    graph_tab.focus()
    page.keyboard.press("ArrowRight")
    timeline_tab = page.get_by_role("tab", name=re.compile("Timeline"))
    expect(timeline_tab).to_be_focused()
    expect(timeline_tab).to_have_attribute("aria-selected", "true")
    expect(page.locator("#panel-timeline")).to_be_visible()
    page.keyboard.press("ArrowLeft")
    expect(graph_tab).to_have_attribute("aria-selected", "true")
    _open_node_panel(page)

    listing = _open(axe_page(), f"{shared_server.url}/executions")
    opener = listing.get_by_role("button", name="Execute…")
    opener.focus()
    listing.keyboard.press("Enter")
    dialog = listing.get_by_role("dialog", name="Execute a workflow")
    expect(dialog).to_be_visible()
    assert listing.evaluate(
        "document.getElementById('execute-dialog').contains(document.activeElement)"
    )
    listing.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(opener).to_be_focused()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_chosen_theme_overrides_the_system_and_is_remembered(shared_server, axe_page, scheme):
    other = "dark" if scheme == "light" else "light"
    page = _open(axe_page(scheme=scheme), f"{shared_server.url}/workflows")
    background = "getComputedStyle(document.body).backgroundColor"
    system_background = page.evaluate(background)
    toggle = page.get_by_role("button", name=re.compile("theme", re.IGNORECASE))
    toggle.click()
    while page.evaluate("document.documentElement.dataset.theme") != other:
        toggle.click()
    expect(toggle).to_contain_text(other.capitalize())
    themed_background = page.evaluate(background)
    assert themed_background != system_background
    assert page.evaluate("getComputedStyle(document.documentElement).colorScheme") == other

    page.goto(f"{shared_server.url}/executions", wait_until="load")
    assert page.evaluate("document.documentElement.dataset.theme") == other
    assert page.evaluate(background) == themed_background
    assert _blocking(page, f"list, {other} chosen on a {scheme} system") == []


def test_phone_layout_never_scrolls_the_page_sideways(shared_server, runs, axe_page):
    wide: list[str] = []

    def check(page: Any, where: str) -> None:
        document, body, viewport = page.evaluate(PAGE_WIDTH)
        if max(document, body) > viewport:
            wide.append(f"{where}: {max(document, body)} px wide in a {viewport} px viewport")

    for name, path in pages(runs).items():
        page = _open(axe_page(viewport="small-phone"), shared_server.url + path)
        check(page, name)
        if name == "detail, finished":
            _open_node_panel(page)
            check(page, f"{name}, node panel")
            for tab in ("Timeline", "Trace"):
                page.get_by_role("tab", name=re.compile(tab)).click()
                check(page, f"{name}, {tab.lower()}")
        page.context.close()
    assert wide == [], "\n".join(wide)


def test_phone_list_and_detail_stay_usable(shared_server, runs, axe_page):
    listing = _open(axe_page(viewport="small-phone"), f"{shared_server.url}/executions")
    row = listing.locator(f'tr[data-execution-id="{runs.finished}"]')
    expect(row).to_be_visible()
    # The row's link to its run fits on screen, whatever the table does with the rest, and a
    # keyboard reaches it although the column with the run's id is left out on a phone.
    link = row.locator(f'a[href$="/executions/{runs.finished}"]:visible').first
    assert link.evaluate("el => el.tabIndex") >= 0
    box = _box(link)
    assert box["x"] >= 0
    assert box["x"] + box["width"] <= PHONE["width"]
    screenshot(listing, "a11y-list-phone", full_page=False)

    page = _open(
        axe_page(viewport="small-phone"), f"{shared_server.url}/executions/{runs.finished}"
    )
    node = page.locator("#panel-graph .node[tabindex]").first
    node.click()
    expect(page.locator("#node-panel")).not_to_contain_text("Select a node")
    page.get_by_role("tab", name=re.compile("Timeline")).click()
    bar = page.locator("#panel-timeline .tl-bar").first
    expect(bar).to_be_visible()
    bar_box = _box(bar)
    assert 0 <= bar_box["x"] < PHONE["width"]
    screenshot(page, "a11y-detail-timeline-phone", full_page=False)
