"""Real Chromium (Debian's, through Playwright) against the session's shared daphne server.

The server (tests/conftest.py `shared_server`) runs the example workflows with delays scaled
down (C4C_DELAY_SCALE) so the one-minute example is watchable in seconds; it holds other tests'
runs too, so a test looks only at the runs it started.
"""

import json
import os
import shutil
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import DaphneServer

CHROMIUM = os.environ.get("C4C_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORTS = {
    "laptop": {"width": 1366, "height": 800},
    "phone": {"width": 390, "height": 844},
    "small-phone": {"width": 375, "height": 812},
}

sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed")


# Module scope: sync Playwright keeps an event loop running in the main thread until it stops,
# which would break later tests that call asyncio.run().
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not shutil.which(CHROMIUM):
        pytest.skip(f"Chromium is not installed at {CHROMIUM} (run make browser)")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def new_page(browser: Any) -> Iterator[Callable[..., Any]]:
    """A page in a fresh context (`init_script` runs before the page's own); script errors
    fail the test."""
    contexts: list[Any] = []
    errors: list[str] = []

    def new_page_(
        *, viewport: str = "laptop", scheme: str = "light", init_script: str | None = None
    ) -> Any:
        context = browser.new_context(viewport=VIEWPORTS[viewport], color_scheme=scheme)
        if init_script is not None:
            context.add_init_script(init_script)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15_000)
        page.on("pageerror", lambda error: errors.append(f"{page.url}: {error}"))
        page.on(
            "console",
            lambda message: (
                errors.append(f"{page.url}: {message.text}")
                # A refused request, a 404 or 400 page is asserted by the tests themselves.
                if message.type == "error"
                and not message.text.startswith("Failed to load resource")
                else None
            ),
        )
        return page

    yield new_page_
    for context in contexts:
        context.close()
    assert errors == []


@pytest.fixture
def open_page(new_page: Callable[..., Any]) -> Callable[..., Any]:
    """new_page, opened at `url`."""

    def open_(
        url: str, *, viewport: str = "laptop", scheme: str = "light", wait: str = "load"
    ) -> Any:
        page = new_page(viewport=viewport, scheme=scheme)
        page.goto(url, wait_until=wait)
        return page

    return open_


def api(server: DaphneServer, path: str, body: dict[str, Any] | None = None) -> Any:
    request = urllib.request.Request(
        server.url + path,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Content-Type": "application/json"},
        method="POST" if body is not None else "GET",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def screenshot(page: Any, name: str, *, full_page: bool = True) -> Path:
    """Save a PNG under test-artifacts/screenshots/ for a person to look at.

    A full-page capture grows the viewport to the document, which stretches anything sized in
    vh; pass full_page=False for pages whose panels scroll inside themselves.
    """
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path
