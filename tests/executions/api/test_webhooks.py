"""POST /workflow/hooks/<hookId>: a signed delivery starts the hook's workflow with the JSON sent
as its trigger event; a bad or missing signature, an unknown or disabled hook, an oversize or
non-JSON body are refused with nothing written; a retry with the same idempotency key answers
the run the first delivery started."""

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.core import serializers
from django.test import Client
from pytest_django.fixtures import Settings as SettingsWrapper

from executions import store
from executions.api.hooks import signature
from executions.models import Execution, ExecutionStatus, NodeExecution, Span, WebhookHook
from executions.secrets import unseal
from tests import factories
from tests.conftest import ROOT, DaphneServer
from tests.executions.conftest import http, within
from tests.workflows.helpers import chain
from workflows.definitions import WorkflowDefinition
from workflows.library import workflow_library

ORDER = {"a": 41, "kind": "order.created"}


@pytest.fixture(autouse=True)
def hook_workflow() -> None:
    """A library workflow whose trigger node feeds math.add: what the hooks here start."""
    definition = chain(
        {"id": "on-order", "type": "trigger"},
        {"id": "add", "procedureName": "math.add", "config": {"b": 1}},
        workflow_id="hook-order",
    )
    workflow_library().register(WorkflowDefinition.model_validate(definition), source=__name__)


@pytest.fixture
def client() -> Client:
    return Client(enforce_csrf_checks=True)


def deliver(
    client: Client,
    hook_id: str,
    secret: str | None,
    body: Any = ORDER,
    *,
    raw: bytes | None = None,
    content_type: str = "application/json",
    headers: dict[str, str] | None = None,
) -> Any:
    data = json.dumps(body).encode() if raw is None else raw
    headers = dict(headers or {})
    if secret is not None:
        headers.setdefault("X-C4C-Signature", signature(secret, data))
    return client.post(
        f"/workflow/hooks/{hook_id}", data=data, content_type=content_type, headers=headers
    )


def finished(execution_id: str) -> Execution:
    within(10, lambda: Execution.objects.get(execution_id=execution_id).status != "running")
    return Execution.objects.get(execution_id=execution_id)


@pytest.mark.django_db(transaction=True)
def test_a_signed_delivery_starts_the_workflow_with_the_body_as_its_trigger_event(
    client: Client,
) -> None:
    hook, secret = factories.webhook_hook()

    response = deliver(client, "orders", secret)

    assert response.status_code == 202, response.content
    body = response.json()
    assert set(body) == {"executionId", "hookId", "location"}
    assert body["hookId"] == "orders"
    assert response["Location"] == body["location"] == f"/workflow/executions/{body['executionId']}"
    run = finished(body["executionId"])
    assert run.status == ExecutionStatus.COMPLETED
    assert run.workflow_id == "hook-order"
    trigger = NodeExecution.objects.get(execution=run, node_id="on-order")
    assert trigger.output == {**ORDER, "startedBy": {"hook": "orders"}}
    assert NodeExecution.objects.get(execution=run, node_id="add").output == {"result": 42}
    hook.refresh_from_db()
    assert hook.last_fired_at is not None


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-C4C-Signature": "sha256=" + "0" * 64},
        {"X-C4C-Signature": signature("another-secret", json.dumps(ORDER).encode())},
    ],
    ids=["missing", "zeros", "another-secret"],
)
def test_a_missing_or_wrong_signature_is_refused_401_and_nothing_is_written(
    client: Client, headers: dict[str, str]
) -> None:
    hook, _ = factories.webhook_hook()

    response = deliver(client, "orders", None, headers=headers)

    assert response.status_code == 401, response.content
    assert "X-C4C-Signature" in response.json()["error"]
    assert Execution.objects.count() == 0
    hook.refresh_from_db()
    assert hook.last_fired_at is None


@pytest.mark.django_db(transaction=True)
def test_a_signature_of_another_body_is_refused(client: Client) -> None:
    _, secret = factories.webhook_hook()
    signed_for_other = signature(secret, json.dumps({"a": 1}).encode())

    response = deliver(client, "orders", None, headers={"X-C4C-Signature": signed_for_other})

    assert response.status_code == 401
    assert Execution.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_a_retry_with_the_same_idempotency_key_answers_the_same_run(client: Client) -> None:
    factories.webhook_hook()
    _, secret = factories.webhook_hook("invoices", idempotency_header="X-Delivery-Id")
    first = deliver(client, "invoices", secret, headers={"X-Delivery-Id": "d-1"})
    assert first.status_code == 202, first.content

    again = deliver(client, "invoices", secret, headers={"X-Delivery-Id": "d-1"})

    assert again.status_code == 202, again.content
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert Execution.objects.count() == 1
    # The key is the hook's own: another delivery key, or Idempotency-Key, starts another run.
    other = deliver(client, "invoices", secret, headers={"X-Delivery-Id": "d-2"})
    assert other.json()["executionId"] != first.json()["executionId"]
    assert Execution.objects.count() == 2
    for execution in Execution.objects.all():
        finished(execution.execution_id)


@pytest.mark.django_db(transaction=True)
def test_the_same_key_on_two_hooks_starts_two_runs(client: Client) -> None:
    _, orders = factories.webhook_hook("orders")
    _, refunds = factories.webhook_hook("refunds")

    first = deliver(client, "orders", orders, headers={"Idempotency-Key": "k"})
    second = deliver(client, "refunds", refunds, headers={"Idempotency-Key": "k"})

    assert first.json()["executionId"] != second.json()["executionId"]
    assert sorted(str(run.idempotency_key) for run in Execution.objects.all()) == [
        "hook:orders:k",
        "hook:refunds:k",
    ]
    for execution in Execution.objects.all():
        finished(execution.execution_id)


@pytest.mark.django_db(transaction=True)
def test_a_body_past_C4C_HOOK_MAX_BYTES_is_refused_413(
    client: Client, settings: SettingsWrapper
) -> None:
    settings.C4C_HOOK_MAX_BYTES = 64
    _, secret = factories.webhook_hook()

    response = deliver(client, "orders", secret, {"note": "x" * 100})

    assert response.status_code == 413, response.content
    assert "C4C_HOOK_MAX_BYTES" in response.json()["error"]
    assert Execution.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_an_unknown_hook_is_404(client: Client) -> None:
    _, secret = factories.webhook_hook()

    response = deliver(client, "nobody", secret)

    assert response.status_code == 404
    assert response.json() == {"error": "No enabled hook 'nobody'"}
    assert Execution.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_a_disabled_hook_is_404_even_when_signed(client: Client) -> None:
    _, secret = factories.webhook_hook(enabled=False)

    response = deliver(client, "orders", secret)

    assert response.status_code == 404
    assert Execution.objects.count() == 0


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("raw", "content_type", "status"),
    [
        (b"a=1&b=2", "application/x-www-form-urlencoded", 415),
        (b"[1, 2]", "application/json", 400),
        (b"{not json", "application/json", 400),
        (b'{"startedBy": "me"}', "application/json", 400),
    ],
    ids=["form", "array", "not-json", "forged-startedBy"],
)
def test_a_body_that_is_not_a_json_object_is_refused(
    client: Client, raw: bytes, content_type: str, status: int
) -> None:
    _, secret = factories.webhook_hook()

    response = deliver(
        client,
        "orders",
        secret,
        raw=raw,
        content_type=content_type,
        headers={"X-C4C-Signature": signature(secret, raw)},
    )

    assert response.status_code == status, response.content
    assert response.json()["error"]
    assert Execution.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_the_hook_secret_is_in_no_stored_row_of_the_run(client: Client) -> None:
    hook, secret = factories.webhook_hook()
    execution_id = deliver(client, "orders", secret).json()["executionId"]
    run = finished(execution_id)

    rows = [run, *NodeExecution.objects.filter(execution=run), *Span.objects.filter(execution=run)]
    stored = serializers.serialize("json", rows)
    assert secret not in stored
    assert signature(secret, json.dumps(ORDER).encode()) not in stored
    assert secret not in WebhookHook.objects.get(pk=hook.pk).sealed_secret


@pytest.mark.django_db(transaction=True)
def test_a_rotated_secret_replaces_the_old_one(client: Client) -> None:
    hook, old = factories.webhook_hook()

    new = store.hook_rotate_secret(hook)

    assert deliver(client, "orders", old).status_code == 401
    accepted = deliver(client, "orders", new)
    assert accepted.status_code == 202
    finished(accepted.json()["executionId"])


@pytest.mark.django_db(transaction=True)
def test_with_sign_in_required_a_hook_needs_its_signature_not_a_token(
    client: Client, settings: SettingsWrapper
) -> None:
    settings.C4C_REQUIRE_AUTH = True
    settings.MIDDLEWARE = settings.API_MIDDLEWARE
    _, secret = factories.webhook_hook()

    assert deliver(client, "orders", None).status_code == 401
    accepted = deliver(client, "orders", secret)

    assert accepted.status_code == 202, accepted.content
    finished(accepted.json()["executionId"])
    assert client.get("/workflow/hooks/orders").status_code == 401


@pytest.mark.django_db(transaction=True)
def test_the_hook_endpoint_is_in_the_openapi_document(client: Client) -> None:
    document = client.get("/openapi.json").json()

    operation = document["paths"]["/workflow/hooks/{hook_id}"]["post"]

    assert {"202", "401", "404", "413", "415"} <= set(operation["responses"])


@pytest.mark.django_db
def test_adding_a_hook_in_admin_shows_its_secret_once(admin_client: Client) -> None:
    response = admin_client.post(
        "/admin/executions/webhookhook/add/",
        {
            "hook_id": "deploys",
            "workflow_id": "hook-order",
            "enabled": "on",
            "idempotency_header": "Idempotency-Key",
        },
        follow=True,
    )

    assert response.status_code == 200
    shown = [str(m) for m in response.context["messages"] if "secret" in str(m)]
    assert len(shown) == 1
    assert "shown only this once" in shown[0]
    secret = shown[0].split(" is ", 1)[1].split(" ", 1)[0]
    hook = WebhookHook.objects.get(hook_id="deploys")
    assert unseal(hook.sealed_secret, what="the hook") == secret
    page = admin_client.get(f"/admin/executions/webhookhook/{hook.pk}/change/").content.decode()
    assert secret not in page
    assert hook.sealed_secret not in page


@pytest.mark.django_db
def test_the_rotate_secret_action_shows_the_new_secret_once(admin_client: Client) -> None:
    hook, old = factories.webhook_hook()

    response = admin_client.post(
        "/admin/executions/webhookhook/",
        {"action": "rotate_secret", "_selected_action": [hook.pk]},
        follow=True,
    )

    shown = [str(m) for m in response.context["messages"]]
    assert len(shown) == 1
    assert "'orders'" in shown[0]
    new = shown[0].split(" is ", 1)[1].split(" ", 1)[0]
    assert new != old
    hook.refresh_from_db()
    assert unseal(hook.sealed_secret, what="the hook") == new


@pytest.mark.slow
def test_a_real_server_requiring_sign_in_runs_a_signed_delivery_once(tmp_path: Path) -> None:
    server = DaphneServer(tmp_path, env={"C4C_REQUIRE_AUTH": "true"})
    server.start()
    try:
        env = {**os.environ, "DATABASE_URL": f"sqlite:///{server.db_path}"}
        made = subprocess.run(
            [
                sys.executable,
                "manage.py",
                "shell",
                "-c",
                "from tests import factories; "
                "print(factories.webhook_hook('live', 'simple-math-workflow')[1])",
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        secret = made.stdout.strip().splitlines()[-1]
        raw = json.dumps({"a": 5}).encode()
        url = f"{server.url}/workflow/hooks/live"
        headers = {"X-C4C-Signature": signature(secret, raw), "Idempotency-Key": "live-1"}

        assert http("POST", url, raw)[0] == 401
        status, sent_headers, body = http("POST", url, raw, headers)
        again = http("POST", url, raw, headers)

        assert status == 202, body
        assert sent_headers["Location"] == body["location"]
        assert again[0] == 202
        assert again[2]["executionId"] == body["executionId"]
        assert again[1]["Idempotent-Replayed"] == "true"
    finally:
        server.stop()
