"""The API's handler resolves through c4c_site.api_urls (the API's patterns first): every API path
must reach the same view, and every name reverse to the same path, as through c4c_site.urls."""

import re

import pytest
from django.urls import NoReverseMatch, get_resolver, resolve, reverse

from accounts.policy import API_PATHS
from c4c_site.api_handler import API_URLCONF, ApiHandler

API_REQUEST_PATHS = [
    "/workflow/execute",
    "/workflow/executions",
    "/workflow/executions/run-1",
    "/workflow/executions-stream",
    "/workflow/executions/run-1/stream",
    "/workflow/definitions",
    "/workflow/no-such-endpoint",
    "/rpc/math.add",
    "/health",
    "/procedures",
    "/openapi.json",
    "/docs",
    "/metrics",
]


@pytest.mark.parametrize("path", API_REQUEST_PATHS)
def test_an_api_path_reaches_the_same_view_through_either_urlconf(path) -> None:
    assert re.match(API_PATHS, path[1:]), "not an API path: the API's handler never sees it"
    site, api = resolve(path), resolve(path, urlconf=API_URLCONF)
    assert (api.func, api.args, api.kwargs) == (site.func, site.args, site.kwargs)


def test_every_name_reverses_to_the_same_path_through_either_urlconf() -> None:
    names = [name for name in get_resolver().reverse_dict if isinstance(name, str)]
    for namespace, (_, resolver) in get_resolver().namespace_dict.items():
        names += [f"{namespace}:{n}" for n in resolver.reverse_dict if isinstance(n, str)]
    checked = 0
    for name in names:
        try:
            site = reverse(name)
        except NoReverseMatch:
            continue  # a name that needs arguments
        assert reverse(name, urlconf=API_URLCONF) == site, name
        checked += 1
    assert checked > 10


def test_the_api_handler_gives_each_request_the_api_urlconf() -> None:
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/health",
        "query_string": b"",
        "headers": [(b"host", b"testserver")],
    }
    request, error = ApiHandler().create_request(scope, None)  # type: ignore[arg-type]
    assert error is None
    assert request is not None
    assert request.urlconf == API_URLCONF
