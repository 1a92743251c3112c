"""A real daphne (`c4c serve`) with C4C_REQUIRE_AUTH=true: the SSE streams and a page refuse
callers without credentials or permission and serve those with them; a session signed in on the
login page makes the dashboard's own API calls work, CSRF check included; a token printed by
`c4c token create` works against the server."""

import json
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from http.cookiejar import CookieJar
from typing import Any

import pytest

from tests.accounts.conftest import bearer
from tests.accounts.live import run_against, secured_server
from tests.conftest import C4C, DaphneServer
from tests.executions.conftest import SseReader, http
from tests.workflows.helpers import C4C_SIMPLE_MATH

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaphneServer]:
    server = secured_server(tmp_path_factory.mktemp("secured-server"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def tokens(secured: DaphneServer) -> dict[str, str]:
    names = ("viewer", "nobody")
    return {name: run_against(secured, str(C4C), "token", "create", name) for name in names}


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class Browser:
    """Cookies kept between requests, redirects not followed: what a page's session sees."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.cookies = CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.cookies), _NoRedirect()
        )

    def send(
        self,
        method: str,
        path: str,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], str]:
        request = urllib.request.Request(
            self.base + path, data=data, method=method, headers=headers or {}
        )
        try:
            with self.opener.open(request, timeout=30) as response:
                return response.status, dict(response.headers), response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), exc.read().decode()

    def cookie(self, name: str) -> str:
        return next(c.value for c in self.cookies if c.name == name and c.value is not None)

    def sign_in(self, username: str) -> int:
        _, _, page = self.send("GET", "/login")
        match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
        assert match, page[:500]
        form = {"username": username, "password": "password", "csrfmiddlewaretoken": match[1]}
        body = urllib.parse.urlencode({**form, "next": "/executions"}).encode()
        kind = {"Content-Type": "application/x-www-form-urlencoded"}
        status, headers, _ = self.send("POST", "/login", body, kind)
        assert headers.get("Location") == "/executions", (status, headers)
        return status


@pytest.mark.parametrize(
    ("path", "first_event"),
    [
        ("/workflow/executions-stream", "executions.initial"),
        ("/workflow/executions/not-yet/stream", "workflow.stream.connected"),
    ],
)
def test_a_stream_is_401_without_a_token_403_without_view_and_streams_with_it(
    secured: DaphneServer, tokens: dict[str, str], path: str, first_event: str
) -> None:
    status, headers, body = http("GET", secured.url + path)
    assert (status, headers["WWW-Authenticate"]) == (401, "Bearer")
    assert "error" in body
    status, _, body = http("GET", secured.url + path, headers=bearer(tokens["nobody"]))
    assert (status, body["permission"]) == (403, "executions.view_execution")

    reader = SseReader(secured.url + path, headers=bearer(tokens["viewer"])).start()
    try:
        reader.wait_for(lambda events: any(e.event == first_event for e in events))
        assert reader.response_headers["Content-Type"].startswith("text/event-stream")
    finally:
        reader.close()


def test_a_page_redirects_to_login_and_a_signed_in_session_drives_the_api(
    secured: DaphneServer,
) -> None:
    browser = Browser(secured.url)
    status, headers, _ = browser.send("GET", "/executions")
    assert (status, headers["Location"]) == (302, "/login?next=/executions")

    assert browser.sign_in("operator") == 302
    status, _, page = browser.send("GET", "/executions")
    assert status == 200
    assert '<span class="account-user">operator</span>' in page

    # The dashboard's own calls go to the API's chain with the session cookie.
    status, _, listing = browser.send("GET", "/workflow/executions")
    assert status == 200, listing
    run = json.dumps({"workflow": C4C_SIMPLE_MATH}).encode()
    json_body = {"Content-Type": "application/json"}
    status, _, refused = browser.send("POST", "/workflow/execute", run, json_body)
    assert status == 403
    assert "CSRF" in refused
    with_token = {**json_body, "X-CSRFToken": browser.cookie("csrftoken")}
    status, _, result = browser.send("POST", "/workflow/execute", run, with_token)
    assert status == 200, result
    assert json.loads(result)["status"] == "completed"


def test_a_token_from_c4c_token_create_works_against_the_server(
    secured: DaphneServer, tokens: dict[str, str]
) -> None:
    status, _, body = http(
        "GET", secured.url + "/workflow/executions", headers=bearer(tokens["viewer"])
    )

    assert status == 200
    assert "executions" in body
