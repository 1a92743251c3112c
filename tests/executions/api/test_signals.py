"""POST /workflow/executions/<id>/signals/<name> in-process: its answers (202, 400, 404, 409,
415), who may send one, and what the run does with what it was sent - kept until a wait node
takes it, oldest first, whether the run was waiting, sleeping before its wait, or running.

transaction=True: the view and the woken run work on threads of their own, with their own
connections. The test sweeps (executions.dispatch.sweep) as a server's heartbeat would.
"""

import importlib
import json
import time
from typing import Any

import pytest
from django.apps import apps
from django.test import Client
from django.utils import timezone
from pytest_django.fixtures import Settings as SettingsWrapper

from executions import runtime
from executions.models import Execution, Signal
from tests import factories
from tests.accounts.conftest import bearer
from tests.executions.conftest import swept_to_end

in_process = pytest.mark.django_db(transaction=True)


def _workflow(*nodes: dict[str, Any]) -> dict[str, Any]:
    return {"id": "signalled", "name": "Signalled", "startNode": nodes[0]["id"], "nodes": nodes}


def _wait(node_id: str, signal: str = "go", **more: Any) -> dict[str, Any]:
    return {"id": node_id, "type": "wait", "config": {"signal": signal}, **more}


def _waiting(*nodes: dict[str, Any]) -> Execution:
    """A run of these nodes, walked here until it parks (or ends)."""
    output = runtime.execute(definition=factories.definition(_workflow(*nodes)), input={})
    return Execution.objects.get(execution_id=output.body["executionId"])


def _send(
    client: Client,
    execution_id: str,
    name: str = "go",
    body: Any = None,
    *,
    content_type: str = "application/json",
    headers: dict[str, str] | None = None,
) -> Any:
    data = body if isinstance(body, str | bytes) or body is None else json.dumps(body)
    return client.post(
        f"/workflow/executions/{execution_id}/signals/{name}",
        data=b"" if data is None else data,
        content_type=content_type,
        headers=headers,
        CONTENT_TYPE=content_type,  # the test client leaves it out of a request without a body
    )


@pytest.fixture
def client() -> Client:
    return Client(enforce_csrf_checks=True)


@pytest.fixture
def roles() -> None:
    """The migration's groups (viewer, operator, admin), made again: an earlier transactional
    test's flush removed them."""
    importlib.import_module("accounts.migrations.0002_permission_groups").create_groups(apps, None)


@in_process
def test_a_signal_to_a_waiting_run_is_accepted_and_its_payload_is_the_wait_nodes_output(
    client: Client,
) -> None:
    execution = _waiting(_wait("ask", "approval"))
    assert execution.status == "waiting"

    response = _send(client, execution.execution_id, "approval", {"approved": True, "by": "ana"})

    assert response.status_code == 202, response.content
    assert response.json() == {
        "executionId": execution.execution_id,
        "signal": "approval",
        "woke": True,
    }
    execution.refresh_from_db()
    assert execution.lease_expires_at is not None
    assert execution.lease_expires_at <= timezone.now()  # due now: the next sweep takes it
    ended = swept_to_end(execution.execution_id)
    assert ended.status == "completed"
    assert factories.node_run(ended, "ask").output == {"approved": True, "by": "ana"}


@in_process
def test_a_signal_sent_without_a_body_carries_an_empty_object(client: Client) -> None:
    execution = _waiting(_wait("ask"))

    assert _send(client, execution.execution_id).status_code == 202

    assert factories.node_run(swept_to_end(execution.execution_id), "ask").output == {}


@in_process
@pytest.mark.parametrize("name", ["has%20space", "a" * 101, "caf%C3%A9", "semi;colon"])
def test_a_signal_name_outside_its_alphabet_is_400(client: Client, name: str) -> None:
    execution = _waiting(_wait("ask"))

    response = _send(client, execution.execution_id, name, {})

    assert response.status_code == 400, response.content
    assert "must be 1-100 letters, digits or _ . : -" in response.json()["error"]
    assert not Signal.objects.exists()


@in_process
@pytest.mark.parametrize("body", ["[1, 2]", '"yes"', "42", "null", "{not json", "\xff"])
def test_a_body_that_is_not_a_json_object_is_400(client: Client, body: str) -> None:
    execution = _waiting(_wait("ask"))

    response = _send(client, execution.execution_id, body=body.encode("latin-1"))

    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/json"
    assert not Signal.objects.exists()


@in_process
@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", ""])
def test_a_body_not_sent_as_json_is_415(client: Client, content_type: str) -> None:
    execution = _waiting(_wait("ask"))

    response = _send(client, execution.execution_id, body="{}", content_type=content_type)

    assert response.status_code == 415, response.content
    assert "Content-Type must be application/json" in response.json()["error"]
    assert not Signal.objects.exists()


@in_process
def test_a_signal_to_an_unknown_execution_is_404(client: Client) -> None:
    response = _send(client, "wf_exec_nobody", "go", {})

    assert response.status_code == 404
    assert response.json() == {"error": "Execution 'wf_exec_nobody' not found"}


@in_process
@pytest.mark.parametrize("status", ["completed", "failed", "cancelled"])
def test_a_signal_to_an_ended_execution_is_409(client: Client, status: str) -> None:
    ended = factories.execution(status=status)

    response = _send(client, ended.execution_id, "go", {})

    assert response.status_code == 409, response.content
    assert f"is {status}" in response.json()["error"]
    assert not Signal.objects.exists()


@in_process
def test_a_viewer_may_not_send_a_signal_and_an_operator_may(
    client: Client, roles: None, settings: SettingsWrapper
) -> None:
    settings.C4C_REQUIRE_AUTH = True
    execution = _waiting(_wait("ask", "approval"))
    viewer = factories.api_token(factories.user(groups=["viewer"]))
    operator = factories.api_token(factories.user("olga", groups=["operator"]))

    refused = _send(client, execution.execution_id, "approval", {}, headers=bearer(viewer))
    assert refused.status_code == 403
    assert refused.json()["permission"] == "executions.execute_workflow"
    assert _send(client, execution.execution_id, "approval", {}).status_code == 401
    assert not Signal.objects.exists()

    accepted = _send(
        client, execution.execution_id, "approval", {"approved": True}, headers=bearer(operator)
    )
    assert accepted.status_code == 202, accepted.content
    assert Signal.objects.get().sent_by == "olga"


@pytest.mark.slow
@in_process
def test_a_signal_sent_while_the_run_sleeps_before_its_wait_is_kept_for_it(
    client: Client,
) -> None:
    execution = _waiting(
        {"id": "nap", "type": "sleep", "config": {"durationMs": 300}, "next": "ask"},
        _wait("ask"),
    )
    assert factories.node_run(execution, "nap").status == "sleeping"

    response = _send(client, execution.execution_id, body={"early": True})

    assert response.status_code == 202
    assert response.json()["woke"] is False  # it sleeps: nothing waits for the signal yet
    ended = swept_to_end(execution.execution_id)
    assert ended.status == "completed"
    nap, ask = factories.node_run(ended, "nap"), factories.node_run(ended, "ask")
    assert nap.wake_at is not None
    assert ask.started_at is not None
    assert ask.started_at >= nap.wake_at  # it slept its full time first
    assert ask.output == {"early": True}
    assert Signal.objects.get().taken_by == "ask#1"


@in_process
def test_two_signals_of_one_name_go_to_two_sequential_wait_nodes_in_the_order_sent(
    client: Client,
) -> None:
    execution = _waiting(_wait("first", "step", next="second"), _wait("second", "step"))

    answers = [
        _send(client, execution.execution_id, "step", {"n": n}).json()["woke"] for n in (1, 2)
    ]

    assert answers == [True, True]  # both found it waiting (the second before any sweep)
    ended = swept_to_end(execution.execution_id)
    assert ended.status == "completed"
    assert factories.node_run(ended, "first").output == {"n": 1}
    assert factories.node_run(ended, "second").output == {"n": 2}
    taken = Signal.objects.order_by("sent_at", "id").values_list("payload", "taken_by")
    assert list(taken) == [({"n": 1}, "first#1"), ({"n": 2}, "second#1")]


@pytest.mark.slow
@in_process
def test_a_signal_to_a_running_run_does_not_wake_it_and_is_taken_when_it_reaches_its_wait(
    client: Client,
) -> None:
    slow = {"id": "slow", "type": "procedure", "procedureName": "custom.delay"}
    started = client.post(
        "/workflow/execute",
        data=json.dumps(
            {
                "workflow": _workflow({**slow, "config": {"ms": 500}, "next": "ask"}, _wait("ask")),
                "async": True,
            }
        ),
        content_type="application/json",
    )
    assert started.status_code == 202, started.content
    execution_id = started.json()["executionId"]

    response = _send(client, execution_id, body={"while": "running"})

    assert response.status_code == 202
    assert response.json()["woke"] is False
    deadline = time.monotonic() + 15  # no sweep: the run never parks
    while Execution.objects.get(execution_id=execution_id).status == "running":
        assert time.monotonic() < deadline, "the run did not end"
        time.sleep(0.02)
    ended = Execution.objects.get(execution_id=execution_id)
    assert ended.status == "completed"
    ask = factories.node_run(ended, "ask")
    assert (ask.output, ask.waiting_for, ask.wake_at) == ({"while": "running"}, "", None)
