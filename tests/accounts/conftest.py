"""Auth turned on for a test (C4C_REQUIRE_AUTH read per request), and a test client for each of
the two middleware chains an API request can meet.

The API's views read the database on threads of their own, so these tests commit
(`transactional_db`; the groups "viewer", "operator" and "admin" that a migration makes are put
back after every flush: tests/conftest.py MigratedRows).

`api_client` runs every test twice: through settings.API_MIDDLEWARE, the chain daphne serves the
API with (c4c_site.api_handler), and through the full chain, which serves it under the test
client and `runserver`. Both must give the same answers.
"""

import pytest
from django.test import Client
from pytest_django.fixtures import Settings as SettingsWrapper


@pytest.fixture
def auth_on(settings: SettingsWrapper) -> SettingsWrapper:
    settings.C4C_REQUIRE_AUTH = True
    return settings


@pytest.fixture(params=["api-chain", "full-chain"])
def api_client(
    request: pytest.FixtureRequest, auth_on: SettingsWrapper, transactional_db: None
) -> Client:
    if request.param == "api-chain":
        auth_on.MIDDLEWARE = auth_on.API_MIDDLEWARE
    return Client()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
