"""A real `c4c serve` (daphne) runs the scheduler: a schedule made on its Schedules page starts
runs on its own within about a second of each slot, each naming its schedule and slot."""

import http.cookiejar
import json
import re
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import DaphneServer

pytestmark = pytest.mark.slow


@pytest.fixture
def server(tmp_path: Path) -> Iterator[DaphneServer]:
    """One serving process: it boots fastest on a busy box (test_two_schedulers.py races two)."""
    started = DaphneServer(tmp_path, env={"C4C_WORKERS": "1"})
    started.start()
    try:
        yield started
    finally:
        started.stop()


def _browser() -> urllib.request.OpenerDirector:
    """A client that keeps cookies, as a browser does (the form's CSRF cookie)."""
    return urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
    )


def _fired_runs(browser: urllib.request.OpenerDirector, url: str) -> list[str]:
    """The executions the schedule's page lists as its last runs."""
    page = browser.open(url, timeout=10).read().decode()
    return re.findall(r'href="/executions/(wf_exec_[^"]+)"', page)


def test_a_schedule_made_on_the_page_fires_in_the_server_by_itself(
    server: DaphneServer,
) -> None:
    browser = _browser()
    form = browser.open(f"{server.url}/schedules/new", timeout=10).read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form)
    assert token is not None
    fields = {
        "csrfmiddlewaretoken": token.group(1),
        "schedule_id": "live-every-two",
        "workflow_id": "simple-math-workflow",
        "cron": "* * * * * */2",
        "timezone": "UTC",
        "input": "{}",
        "enabled": "on",
        "overlap": "allow",
        "catch_up": "none",
    }
    request = urllib.request.Request(
        f"{server.url}/schedules/new",
        data=urllib.parse.urlencode(fields).encode(),
        headers={"Referer": f"{server.url}/schedules/new"},
    )
    page = browser.open(request, timeout=10)
    assert page.geturl().endswith("/schedules/live-every-two")
    schedule_page = f"{server.url}/schedules/live-every-two"

    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and len(_fired_runs(browser, schedule_page)) < 2:
        time.sleep(0.2)
    fired = _fired_runs(browser, schedule_page)

    assert len(fired) >= 2, server.log()
    assert len(set(fired)) == len(fired)
    for execution_id in fired:
        url = f"{server.url}/workflow/executions/{execution_id}"
        with urllib.request.urlopen(url, timeout=10) as response:
            assert json.loads(response.read())["execution"]["workflowId"] == "simple-math-workflow"
