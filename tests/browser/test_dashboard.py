"""The dashboard in a real browser against a real server: live rows, live graph, tabs, errors."""

import re
from datetime import UTC, datetime

import pytest
from django.template.loader import render_to_string
from playwright.sync_api import expect

from executions.dashboard.views import detail_page_context
from executions.models import Execution, ExecutionRows, Span

from .conftest import VIEWPORTS, api, screenshot

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def _dialog(page):
    return page.get_by_role("dialog", name="Execute a workflow")


def _stat(page, name: str) -> int:
    return int(page.locator(f'[data-stat="{name}"]').inner_text())


def test_executing_from_the_page_adds_a_live_row_that_completes(shared_server, open_page):
    watcher = open_page(f"{shared_server.url}/executions")
    expect(watcher.locator("#connection")).to_have_attribute("data-state", "live")
    watcher.evaluate("window.__notReloaded = true")
    total_before = _stat(watcher, "total")
    completed_before = _stat(watcher, "completed")

    runner = open_page(f"{shared_server.url}/executions")
    runner.get_by_role("button", name="Execute…").click()
    _dialog(runner).get_by_label("Workflow").select_option("simple-math-workflow")
    runner.get_by_role("button", name="Execute", exact=True).click()
    runner.wait_for_url(re.compile(r"/executions/wf_exec_"))
    execution_id = runner.url.rsplit("/", 1)[1]
    expect(runner.locator("#execution-header .status")).to_have_text(re.compile("Completed"))

    row = watcher.locator(f'tr[data-execution-id="{execution_id}"]')
    expect(row).to_be_visible()
    expect(row).to_have_attribute("data-status", "completed")
    expect(row.locator(".status")).to_have_text(re.compile("Completed"))
    expect(watcher.locator("#execution-rows tr").first).to_have_attribute(
        "data-execution-id", execution_id
    )
    expect(watcher.locator('[data-stat="total"]')).to_have_text(str(total_before + 1))
    expect(watcher.locator('[data-stat="completed"]')).to_have_text(str(completed_before + 1))
    assert watcher.evaluate("window.__notReloaded") is True


def test_execute_dialog_explains_bad_json_before_sending(shared_server, open_page):
    page = open_page(f"{shared_server.url}/executions")
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url) if "/workflow/execute" in r.url else None)
    page.get_by_role("button", name="Execute…").click()
    _dialog(page).get_by_label("Input").fill('{"a": 1,')
    page.get_by_role("button", name="Execute", exact=True).click()
    error = page.locator("#execute-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("not valid JSON")
    expect(_dialog(page).get_by_label("Input")).to_have_attribute("aria-invalid", "true")

    _dialog(page).get_by_label("Input").fill("[1, 2]")
    page.get_by_role("button", name="Execute", exact=True).click()
    expect(error).to_contain_text("must be a JSON object")
    assert requests == []
    assert "/executions/" not in page.url.split("/executions", 1)[1]


def test_server_side_rejection_is_shown_inline(shared_server, open_page):
    page = open_page(f"{shared_server.url}/executions")
    page.get_by_role("button", name="Execute…").click()
    _dialog(page).get_by_label("Workflow").select_option("simple-math-workflow")
    _dialog(page).get_by_label("Input").fill('{"a": "not a number"}')
    page.get_by_role("button", name="Execute", exact=True).click()
    # Accepted (the engine reports bad procedure input as a failed run) or refused inline;
    # either way the page never breaks. (Locators, not wait_for_function: the page's CSP refuses
    # the eval that a function string needs.)
    expect(page.locator("#execute-error:not([hidden]), #panel-graph").first).to_be_visible()


def test_long_running_graph_colours_nodes_live(shared_server, open_page):
    page = open_page(f"{shared_server.url}/workflows")
    page.locator('[data-execute-open][data-workflow="long-running-workflow"]').click()
    page.get_by_role("button", name="Execute", exact=True).click()
    page.wait_for_url(re.compile(r"/executions/wf_exec_"))
    graph = page.locator("#panel-graph svg.graph")

    running = graph.locator('.node[data-status="running"]')
    expect(running.first).to_be_visible()
    expect(graph.locator('.node[data-status="pending"]').first).to_be_visible()
    screenshot(page, "detail-running-light-laptop")
    expect(graph.locator('.node[data-node-id="warm-up"]')).to_have_attribute(
        "data-status", "completed", timeout=20_000
    )
    expect(graph.locator('.node[data-node-id="finish"]')).to_have_attribute(
        "data-status", "completed", timeout=30_000
    )
    expect(graph.locator('.node[data-status="running"]')).to_have_count(0)
    expect(page.locator("#execution-header .status")).to_have_text(re.compile("Completed"))
    expect(graph.locator(".node .node-status-word").first).to_have_text("completed")

    execution_id = page.url.rsplit("/", 1)[1]
    spans = api(shared_server, f"/workflow/executions/{execution_id}")["execution"]["spans"]
    assert spans
    page.get_by_role("tab", name=re.compile("Timeline")).click()
    expect(page.locator("#panel-timeline .tl-bar")).to_have_count(len(spans))
    page.get_by_role("tab", name=re.compile("Trace")).click()
    expect(page.locator("#panel-trace .trace-row")).to_have_count(len(spans))


def test_page_catches_up_after_the_stream_drops(shared_server, open_page):
    started = api(
        shared_server, "/workflow/execute", {"workflowId": "long-running-workflow", "async": True}
    )
    execution_id = started["executionId"]
    page = open_page(f"{shared_server.url}/executions/{execution_id}")
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    page.context.set_offline(True)
    expect(page.locator("#connection")).to_have_attribute(
        "data-state", "reconnecting", timeout=10_000
    )
    page.wait_for_timeout(2_500)
    page.context.set_offline(False)
    expect(page.locator("#execution-header .status")).to_have_text(
        re.compile("Completed"), timeout=30_000
    )
    truth = api(shared_server, f"/workflow/executions/{execution_id}")["execution"]["nodeDetails"]
    for node_id, detail in truth.items():
        expect(page.locator(f'.node[data-node-id="{node_id}"]')).to_have_attribute(
            "data-status", detail["status"]
        )


def test_failed_example_shows_its_error_and_failed_node(shared_server, open_page):
    result = api(shared_server, "/workflow/execute", {"workflowId": "failing-workflow"})
    page = open_page(f"{shared_server.url}/executions/{result['executionId']}")
    alert = page.locator("#execution-header .error-box")
    expect(alert).to_be_visible()
    expect(alert).to_contain_text(result["error"]["name"])
    expect(alert).to_contain_text(result["error"]["message"][:40])
    page.get_by_text("Stack trace").click()
    expect(alert.locator("pre.stack")).to_be_visible()
    failed = page.locator('.node[data-status="failed"]')
    expect(failed).to_have_count(1)
    failed.click()
    expect(page.locator("#node-panel")).to_contain_text(result["error"]["name"])


def test_clicking_a_node_shows_its_input_output_and_timing(shared_server, open_page):
    result = api(shared_server, "/workflow/execute", {"workflowId": "simple-math-workflow"})
    page = open_page(f"{shared_server.url}/executions/{result['executionId']}")
    page.locator('.node[data-node-id="add"]').click()
    panel = page.locator("#node-panel")
    expect(panel.get_by_role("heading", name="add")).to_be_visible()
    expect(panel).to_contain_text("Input")
    expect(panel).to_contain_text("Output")
    expect(panel).to_contain_text('"result": 15')
    expect(panel).to_contain_text("Duration")
    started = panel.locator("dt", has_text="Started").locator("xpath=following-sibling::dd[1]")
    expect(started).to_have_text(re.compile(r"^\d{2}:\d{2}:\d{2}\.\d{3}$"))
    # The keyboard reaches nodes too.
    page.locator('.node[data-node-id="multiply"]').focus()
    page.keyboard.press("Enter")
    expect(panel.get_by_role("heading", name="multiply")).to_be_visible()


_MARKUP = '<img src=x onerror="window.__xss = 1">'


def test_markup_in_workflow_data_is_shown_as_text_and_never_runs(shared_server, open_page):
    definition = {
        "id": "markup-wf",
        "name": "<script>window.__xss = 2</script>Evil",
        "startNode": "log<svg onload=window.__xss=3>",
        "nodes": [
            {
                "id": "log<svg onload=window.__xss=3>",
                "type": "procedure",
                "procedureName": "custom.log",
                "config": {"message": "{{input.msg}}"},
                "next": "fetch",
            },
            {
                "id": "fetch",
                "type": "procedure",
                "procedureName": "data.fetch",
                "config": {"source": "{{input.msg}}"},
            },
        ],
    }
    result = api(
        shared_server, "/workflow/execute", {"workflow": definition, "input": {"msg": _MARKUP}}
    )
    assert _MARKUP in result["error"]["message"]

    listing = open_page(f"{shared_server.url}/executions")
    row = listing.locator(f'tr[data-execution-id="{result["executionId"]}"]')
    expect(row).to_contain_text("<script>window.__xss = 2</script>Evil")
    page = open_page(f"{shared_server.url}/executions/{result['executionId']}")
    expect(page.locator("#execution-header h1")).to_contain_text("<script>")
    expect(page.locator("#execution-header .error-box")).to_contain_text(_MARKUP)
    for node in page.locator("#panel-graph .node").all():
        node.click()
    expect(page.locator("#node-panel")).to_contain_text(_MARKUP)
    for tab in ("Timeline", "Trace"):
        page.get_by_role("tab", name=re.compile(tab)).click()
        for summary in page.locator(f"#panel-{tab.lower()} summary").all():
            summary.click()
    expect(page.locator("#panel-trace")).to_contain_text(_MARKUP)
    for opened in (listing, page):
        assert opened.evaluate("window.__xss") is None
        assert opened.locator("[onerror], [onload]").count() == 0
        assert opened.locator('script:not([src]):not([type="application/json"])').count() == 0


def test_tabs_follow_the_aria_pattern_with_arrow_keys(shared_server, open_page):
    result = api(shared_server, "/workflow/execute", {"workflowId": "simple-math-workflow"})
    page = open_page(f"{shared_server.url}/executions/{result['executionId']}")
    graph_tab = page.get_by_role("tab", name="Graph")
    graph_tab.focus()
    page.keyboard.press("ArrowRight")
    timeline_tab = page.get_by_role("tab", name=re.compile("Timeline"))
    expect(timeline_tab).to_be_focused()
    expect(timeline_tab).to_have_attribute("aria-selected", "true")
    expect(graph_tab).to_have_attribute("tabindex", "-1")
    expect(page.locator("#panel-timeline")).to_be_visible()
    expect(page.locator("#panel-graph")).to_be_hidden()
    page.keyboard.press("End")
    expect(page.get_by_role("tab", name=re.compile("Trace"))).to_be_focused()
    page.keyboard.press("Home")
    expect(graph_tab).to_have_attribute("aria-selected", "true")
    # A span row opens to show its attributes.
    page.get_by_role("tab", name=re.compile("Trace")).click()
    page.locator("#panel-trace summary").first.click()
    expect(page.locator("#panel-trace table.kv").first).to_be_visible()


def test_unknown_execution_shows_the_404_page(shared_server, open_page):
    page = open_page(f"{shared_server.url}/executions/wf_exec_nope")
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    expect(page.locator("main")).to_contain_text("wf_exec_nope")


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("viewport", sorted(VIEWPORTS))
def test_screenshots_of_every_page(shared_server, open_page, scheme, viewport):
    """Artifacts for a human to look at; the checks guard against layouts that spill."""
    ok = api(shared_server, "/workflow/execute", {"workflowId": "branching-workflow", "input": {}})
    failed = api(shared_server, "/workflow/execute", {"workflowId": "failing-workflow"})
    pages = {
        "executions": "/executions",
        "workflows": "/workflows",
        "detail": f"/executions/{ok['executionId']}",
        "detail-failed": f"/executions/{failed['executionId']}",
        "not-found": "/executions/wf_exec_missing",
    }
    for name, path in pages.items():
        page = open_page(shared_server.url + path, viewport=viewport, scheme=scheme)
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{name} scrolls sideways by {overflow}px at {viewport}"
        screenshot(page, f"{name}-{scheme}-{viewport}")
        if name == "detail":
            for tab in ("Timeline", "Trace"):
                page.get_by_role("tab", name=re.compile(tab)).click()
                page.locator(f"#panel-{tab.lower()} summary").nth(1).click()
                screenshot(page, f"{name}-{tab.lower()}-{scheme}-{viewport}")


def _big_trace(span_count: int) -> str:
    """A finished execution with `span_count` spans, rendered by the real templates (no DB)."""
    start_us = 1_795_000_000_000_000
    execution = Execution(
        id=1,
        execution_id="wf_exec_big",
        workflow_id="simple-math-workflow",
        workflow_name="Simple Math Workflow",
        status="completed",
        started_at=datetime.fromtimestamp(start_us / 1e6, tz=UTC),
        execution_time_ms=5000,
    )
    execution.definition = {"id": "simple-math-workflow", "startNode": "add", "nodes": []}
    root = Span(
        span_id="root",
        name="workflow.execute",
        start_time_us=start_us,
        end_time_us=start_us + 5_000_000,
        status_code="OK",
        attributes={"workflow.id": "simple-math-workflow"},
    )
    children = [
        Span(
            span_id=f"s{i}",
            parent_span_id="root" if i % 5 == 0 else f"s{i - i % 5}",
            name="workflow.node.procedure",
            start_time_us=start_us + i * 9_000,
            end_time_us=start_us + i * 9_000 + (i % 7 + 1) * 4_000,
            status_code="ERROR" if i % 50 == 7 else "OK",
            attributes={"node.id": f"node-{i}", "node.type": "procedure"},
        )
        for i in range(span_count - 1)
    ]
    context = detail_page_context(ExecutionRows(execution, [], [root, *children]))
    return render_to_string("executions/detail.html", context)


@pytest.mark.parametrize("span_count", [3, 500])
def test_timeline_and_trace_stay_readable_from_3_to_500_spans(shared_server, open_page, span_count):
    html = _big_trace(span_count)
    page = open_page(f"{shared_server.url}/workflows")
    page.route(
        f"{shared_server.url}/executions/wf_exec_big",
        lambda route: route.fulfill(status=200, content_type="text/html", body=html),
    )
    page.goto(f"{shared_server.url}/executions/wf_exec_big#timeline")
    bars = page.locator("#panel-timeline .tl-bar")
    expect(bars).to_have_count(span_count)
    widths = bars.evaluate_all("bars => bars.map(b => b.getBoundingClientRect().width)")
    assert min(widths) >= 1
    page.locator("#panel-timeline summary").nth(span_count - 1).click()
    expect(page.locator("#panel-timeline .span-detail")).to_contain_text(f"node-{span_count - 2}")
    screenshot(page, f"timeline-{span_count}-spans-light-laptop", full_page=False)
    page.get_by_role("tab", name=re.compile("Trace")).click()
    expect(page.locator("#panel-trace .trace-row")).to_have_count(span_count)
    screenshot(page, f"trace-{span_count}-spans-light-laptop", full_page=False)
