"""The API with C4C_REQUIRE_AUTH on: every endpoint refuses a caller without credentials (401), a
token without the endpoint's permission (403, naming it), and answers one with it; tokens that
were revoked or whose user left are refused; the session cookie works with Django's CSRF check.

Each test runs on both middleware chains (see conftest.api_client). The SSE streams answer 401
and 403 here; their 200 is read from a real daphne in test_live_server.py.
"""

import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.utils import timezone

from accounts import policy
from accounts.models import ApiToken, token_digest
from tests import factories
from tests.accounts.conftest import bearer
from tests.workflows.helpers import C4C_SIMPLE_MATH

ALL = (policy.VIEW, policy.EXECUTE, policy.CANCEL, policy.MANAGE)

# (method, path, body, the permission it needs, its status with that permission)
ENDPOINTS: list[tuple[str, str, Any, str, int]] = [
    ("GET", "/workflow/executions", None, policy.VIEW, 200),
    ("GET", "/workflow/executions/auth-done", None, policy.VIEW, 200),
    ("GET", "/workflow/definitions", None, policy.VIEW, 200),
    ("GET", "/workflow/definitions/retry-workflow", None, policy.VIEW, 200),
    ("POST", "/workflow/validate", C4C_SIMPLE_MATH, policy.VIEW, 200),
    ("POST", "/workflow/execute", {"workflow": C4C_SIMPLE_MATH}, policy.EXECUTE, 200),
    ("POST", "/workflow/executions/auth-running/cancel", {}, policy.CANCEL, 200),
    ("POST", "/workflow/executions/auth-done/rerun", {}, policy.CANCEL, 202),
    ("GET", "/procedures", None, policy.VIEW, 200),
    ("POST", "/rpc/math.add", {"a": 1, "b": 2}, policy.EXECUTE, 200),
    ("GET", "/openapi.json", None, policy.VIEW, 200),
    ("GET", "/docs", None, policy.VIEW, 200),
    ("GET", "/metrics", None, policy.VIEW, 200),
]
STREAMS = ["/workflow/executions-stream", "/workflow/executions/auth-done/stream"]


@pytest.fixture
def runs() -> None:
    factories.finished_run(execution_id="auth-done")
    factories.started_run(execution_id="auth-running")


def call(
    client: Client, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
) -> Any:
    if method == "GET":
        return client.get(path, headers=headers)
    return client.generic(
        method,
        path,
        data=b"" if body is None else json.dumps(body),
        content_type="application/json",
        headers=headers,
    )


def refused(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"] == "application/json"
    body: dict[str, Any] = response.json()
    return body


@pytest.mark.parametrize(("method", "path", "body", "needs", "ok"), ENDPOINTS)
def test_an_endpoint_without_credentials_is_401_with_a_bearer_challenge(
    api_client: Client, method: str, path: str, body: Any, needs: str, ok: int
) -> None:
    answer = refused(call(api_client, method, path, body), 401)

    assert "Bearer" in answer["error"]
    assert call(api_client, method, path, body)["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize(("method", "path", "body", "needs", "ok"), ENDPOINTS)
def test_an_endpoint_with_a_token_lacking_its_permission_is_403_naming_it(
    api_client: Client, method: str, path: str, body: Any, needs: str, ok: int
) -> None:
    token = factories.api_token(permissions=[p for p in ALL if p != needs])

    answer = refused(call(api_client, method, path, body, bearer(token)), 403)

    assert answer == {"error": f"Permission '{needs}' is required", "permission": needs}


@pytest.mark.parametrize(("method", "path", "body", "needs", "ok"), ENDPOINTS)
def test_an_endpoint_with_a_token_holding_its_permission_answers(
    api_client: Client, runs: None, method: str, path: str, body: Any, needs: str, ok: int
) -> None:
    token = factories.api_token(permissions=[needs])

    response = call(api_client, method, path, body, bearer(token))

    assert response.status_code == ok, response.content[:300]


@pytest.mark.parametrize("path", STREAMS)
def test_a_stream_without_credentials_is_401_and_without_view_permission_403(
    api_client: Client, path: str
) -> None:
    refused(api_client.get(path), 401)
    token = factories.api_token(permissions=[policy.EXECUTE, policy.CANCEL, policy.MANAGE])
    assert refused(api_client.get(path, headers=bearer(token)), 403)["permission"] == policy.VIEW


def test_health_stays_open_for_load_balancers(api_client: Client) -> None:
    assert api_client.get("/health").status_code == 200


def test_any_other_unsafe_request_needs_manage(api_client: Client, runs: None) -> None:
    operator = factories.api_token(factories.user(groups=["operator"]))
    admin = factories.api_token(factories.user(groups=["admin"]))
    path = "/workflow/executions/auth-done"

    answer = refused(call(api_client, "DELETE", path, {}, bearer(operator)), 403)
    assert answer["permission"] == policy.MANAGE
    # Past the check, the API itself answers: there is no DELETE here.
    assert call(api_client, "DELETE", path, {}, bearer(admin)).status_code == 405


def test_the_migrations_groups_hold_what_their_names_say(api_client: Client, runs: None) -> None:
    viewer = factories.api_token(factories.user(groups=["viewer"]))
    operator = factories.api_token(factories.user(groups=["operator"]))
    execute = {"workflow": C4C_SIMPLE_MATH}

    assert api_client.get("/workflow/executions", headers=bearer(viewer)).status_code == 200
    run = "/workflow/execute"
    assert call(api_client, "POST", run, execute, bearer(viewer)).status_code == 403
    assert call(api_client, "POST", run, execute, bearer(operator)).status_code == 200
    cancel = "/workflow/executions/auth-running/cancel"
    assert call(api_client, "POST", cancel, {}, bearer(operator)).status_code == 200


def test_a_revoked_token_is_401(api_client: Client) -> None:
    token = factories.api_token(permissions=[policy.VIEW])
    ApiToken.objects.get(key_hash=token_digest(token)).revoke()

    answer = refused(api_client.get("/workflow/executions", headers=bearer(token)), 401)

    assert "revoked" in answer["error"]
    response = api_client.get("/workflow/executions", headers=bearer(token))
    assert response["WWW-Authenticate"] == 'Bearer error="invalid_token"'


def test_a_token_of_an_inactive_user_is_401(api_client: Client) -> None:
    owner = factories.user(permissions=[policy.VIEW])
    token = factories.api_token(owner)
    owner.is_active = False
    owner.save()

    refused(api_client.get("/workflow/executions", headers=bearer(token)), 401)


@pytest.mark.parametrize(
    "header", ["Bearer c4c_00000000_not-a-token", "Bearer ", "Basic dXNlcjpwYXNz", "c4c_token"]
)
def test_an_unknown_token_or_another_scheme_is_401(api_client: Client, header: str) -> None:
    refused(api_client.get("/workflow/executions", headers={"Authorization": header}), 401)


def test_a_tokens_use_is_noted_at_most_once_a_minute(api_client: Client) -> None:
    token = factories.api_token(permissions=[policy.VIEW])
    row = ApiToken.objects.get(key_hash=token_digest(token))

    def last_used() -> datetime | None:
        return ApiToken.objects.get(pk=row.pk).last_used_at

    assert last_used() is None
    api_client.get("/workflow/definitions", headers=bearer(token))
    first = last_used()
    assert first is not None
    assert timezone.now() - first < timedelta(seconds=5)

    api_client.get("/workflow/definitions", headers=bearer(token))
    assert last_used() == first

    earlier = timezone.now() - timedelta(minutes=2)
    ApiToken.objects.filter(pk=row.pk).update(last_used_at=earlier)
    api_client.get("/workflow/definitions", headers=bearer(token))
    later = last_used()
    assert later is not None
    assert later > earlier


def test_only_the_hash_of_a_token_is_stored(transactional_db: None) -> None:
    token = factories.api_token()
    row = ApiToken.objects.get()

    assert token.startswith(f"c4c_{row.prefix}_")
    assert row.key_hash == token_digest(token)
    stored = ApiToken.objects.values_list().get()
    assert all(token not in str(value) for value in stored)


def test_a_session_cookie_reads_the_api_the_dashboard_calls(api_client: Client, runs: None) -> None:
    api_client.force_login(factories.user(groups=["viewer"]))

    assert api_client.get("/workflow/executions").status_code == 200
    assert api_client.get("/workflow/executions/auth-done").status_code == 200


def test_a_session_without_the_permission_is_403(api_client: Client) -> None:
    api_client.force_login(factories.user())

    assert refused(api_client.get("/workflow/executions"), 403)["permission"] == policy.VIEW


CSRF_SECRET = "a" * 32


@pytest.mark.parametrize("chain", ["api-chain", "full-chain"])
def test_a_session_post_must_pass_the_csrf_check(
    auth_on: Any, transactional_db: None, chain: str
) -> None:
    if chain == "api-chain":
        auth_on.MIDDLEWARE = auth_on.API_MIDDLEWARE
    client = Client(enforce_csrf_checks=True)
    client.force_login(factories.user(groups=["operator"]))
    client.cookies["csrftoken"] = CSRF_SECRET
    execute = {"workflow": C4C_SIMPLE_MATH}

    answer = refused(call(client, "POST", "/workflow/execute", execute), 403)
    assert answer["error"].startswith("CSRF check failed")
    forged = {"X-CSRFToken": "b" * 32}
    assert call(client, "POST", "/workflow/execute", execute, forged).status_code == 403
    other_site = {"X-CSRFToken": CSRF_SECRET, "Origin": "https://evil.example"}
    assert call(client, "POST", "/workflow/execute", execute, other_site).status_code == 403

    sent = call(client, "POST", "/workflow/execute", execute, {"X-CSRFToken": CSRF_SECRET})
    assert sent.status_code == 200, sent.content[:300]
    assert sent.json()["status"] == "completed"


@pytest.mark.parametrize("chain", ["api-chain", "full-chain"])
def test_a_bearer_post_needs_no_csrf_token(
    auth_on: Any, transactional_db: None, chain: str
) -> None:
    if chain == "api-chain":
        auth_on.MIDDLEWARE = auth_on.API_MIDDLEWARE
    client = Client(enforce_csrf_checks=True)
    token = factories.api_token(permissions=[policy.EXECUTE])

    sent = call(client, "POST", "/workflow/execute", {"workflow": C4C_SIMPLE_MATH}, bearer(token))

    assert sent.status_code == 200, sent.content[:300]


def test_with_auth_off_the_api_is_open_as_before(
    client: Client, transactional_db: None, settings: Any
) -> None:
    settings.C4C_REQUIRE_AUTH = False
    settings.MIDDLEWARE = settings.API_MIDDLEWARE

    assert client.get("/workflow/executions").status_code == 200
    sent = call(client, "POST", "/workflow/execute", {"workflow": C4C_SIMPLE_MATH})
    assert sent.status_code == 200


def test_permissions_exist_once_after_migrations_and_post_migrate(transactional_db: None) -> None:
    codenames = [p.split(".", 1)[1] for p in ALL]
    found = Permission.objects.filter(content_type__app_label="executions", codename__in=codenames)

    assert sorted(found.values_list("codename", flat=True)) == sorted(codenames)
