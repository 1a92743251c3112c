"""Every page passes its Content-Security-Policy: no inline script or style is refused anywhere.

Each page is loaded in Chromium with a listener for `securitypolicyviolation` installed before
any of its scripts run; a refused inline style or script also logs a console error, which fails
the test too. The detail page is read with its timeline and trace shown and while a run goes on,
so the fragments live updates insert are checked as well as the first render.
"""

import json
import re
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import VIEWPORTS

pytestmark = pytest.mark.slow

WATCH = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(
    `${event.violatedDirective} blocked ${event.blockedURI || "inline"} at ` +
    `${event.sourceFile}:${event.lineNumber}`
  );
});
"""


class Watched:
    """A page whose CSP violations and console errors are collected from its first script on."""

    def __init__(self, browser: Any) -> None:
        self.context = browser.new_context(viewport=VIEWPORTS["laptop"])
        self.context.add_init_script(WATCH)
        self.page = self.context.new_page()
        self.page.set_default_timeout(15_000)
        self.errors: list[str] = []
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        # A refused style or script logs an error too; a missing favicon (admin's) is no concern.
        self.page.on(
            "console",
            lambda message: (
                self.errors.append(message.text)
                if message.type == "error"
                and not message.text.startswith("Failed to load resource")
                else None
            ),
        )

    def open(self, url: str) -> Any:
        response = self.page.goto(url, wait_until="load")
        assert response is not None, url
        assert response.ok, url
        policy = response.headers.get("content-security-policy", "")
        assert "script-src 'self'" in policy, (url, policy)
        assert "unsafe-inline" not in policy, (url, policy)
        return self.page

    def problems(self) -> list[str]:
        violations: list[str] = self.page.evaluate("window.__cspViolations")
        return violations + self.errors


@pytest.fixture
def watched(browser: Any) -> Iterator[Watched]:
    page = Watched(browser)
    yield page
    page.context.close()


def _post(base: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        f"{base}{path}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        result: dict[str, Any] = json.loads(response.read())
        return result


@pytest.mark.parametrize("path", ["/", "/workflows", "/admin/login/"])
def test_a_page_loads_with_no_csp_violation(shared_server, watched: Watched, path: str) -> None:
    page = watched.open(f"{shared_server.url}{path}")
    page.wait_for_load_state("networkidle")
    assert watched.problems() == []


def test_the_detail_page_with_its_timeline_and_trace_has_no_csp_violation(
    shared_server, watched: Watched
) -> None:
    result = _post(shared_server.url, "/workflow/execute", {"workflowId": "simple-math-workflow"})
    page = watched.open(f"{shared_server.url}/executions/{result['executionId']}")
    page.get_by_role("tab", name=re.compile("Timeline")).click()
    bars = page.locator("#panel-timeline .tl-bar")
    expect(bars.first).to_be_visible()
    # Each bar is placed and sized by the page's scripts through the CSSOM, not a style attribute.
    widths = bars.evaluate_all("bars => bars.map(bar => bar.getBoundingClientRect().width)")
    assert widths
    assert all(width > 0 for width in widths), widths
    page.get_by_role("tab", name=re.compile("Trace")).click()
    expect(page.locator("#panel-trace .trace-row").first).to_be_visible()
    assert watched.problems() == []


def test_a_live_run_updates_its_page_with_no_csp_violation(shared_server, watched: Watched) -> None:
    started = _post(
        shared_server.url,
        "/workflow/execute",
        {"workflowId": "long-running-workflow", "async": True},
    )
    page = watched.open(f"{shared_server.url}/executions/{started['executionId']}")
    expect(page.locator("#execution-header .status")).to_have_text(
        re.compile("Completed"), timeout=60_000
    )
    page.get_by_role("tab", name=re.compile("Timeline")).click()
    expect(page.locator("#panel-timeline .tl-bar").first).to_be_visible()
    assert watched.problems() == []


def test_swagger_ui_at_docs_renders_under_its_policy(shared_server, watched: Watched) -> None:
    page = watched.open(f"{shared_server.url}/docs")
    expect(page.locator(".swagger-ui .opblock").first).to_be_visible()
    expect(page.get_by_text("/workflow/executions", exact=True).first).to_be_visible()
    assert watched.problems() == []
