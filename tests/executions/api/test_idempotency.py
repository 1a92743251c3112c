"""Submitting safely more than once: Idempotency-Key on POST /workflow/execute, and a 503 from a
broker that refuses or never answers, after which the same request is accepted."""

import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from django.test import Client

from executions.models import Execution
from tests.conftest import DaphneServer, free_port
from tests.executions.conftest import delay_definition, http, math_definition


@pytest.fixture
def client() -> Client:
    return Client(enforce_csrf_checks=True)


def post(client: Client, body: Any, key: str | None = None, **headers: str) -> Any:
    if key is not None:
        headers["Idempotency-Key"] = key
    return client.post(
        "/workflow/execute", data=json.dumps(body), content_type="application/json", headers=headers
    )


@pytest.mark.django_db(transaction=True)
def test_the_same_request_with_the_same_key_answers_with_the_first_run(client: Client) -> None:
    body = {"workflow": math_definition("idem"), "input": {"x": 1}}
    first = post(client, body, key="order-42")
    assert first.status_code == 200, first.content
    assert "Idempotent-Replayed" not in first

    again = post(client, body, key="order-42")

    assert again.status_code == 200, again.content
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert Execution.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_an_async_request_sent_again_answers_200_with_the_same_run(client: Client) -> None:
    body = {"workflow": math_definition("idem-async"), "async": True}
    first = post(client, body, key="async-key")
    assert first.status_code == 202, first.content

    again = post(client, body, key="async-key")

    assert again.status_code == 200, again.content
    assert again["Idempotent-Replayed"] == "true"
    execution_id = first.json()["executionId"]
    assert again.json()["executionId"] == execution_id
    assert again["Location"] == first["Location"] == f"/workflow/executions/{execution_id}"
    assert Execution.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_waiting_request_for_a_run_still_going_gets_202_and_where_to_read_it(
    client: Client,
) -> None:
    started = post(client, {"workflow": delay_definition(60_000), "async": True}, key="slow-key")
    execution_id = started.json()["executionId"]

    # The same request, but waiting for the result: the run is not done, so not a result.
    again = post(client, {"workflow": delay_definition(60_000)}, key="slow-key")

    assert again.status_code == 202, again.content
    assert again.json()["executionId"] == execution_id
    assert again.json()["status"] == "running"
    assert again["Location"] == f"/workflow/executions/{execution_id}"
    cancelled = client.post(
        f"/workflow/executions/{execution_id}/cancel", data="{}", content_type="application/json"
    )
    assert cancelled.status_code == 200
    assert Execution.objects.count() == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("second", "reason"),
    [
        ({"workflow": math_definition("idem-422"), "input": {"x": 2}}, "another input"),
        ({"workflow": math_definition("idem-other"), "input": {"x": 1}}, "another inline"),
        ({"workflowId": "simple-math-workflow", "input": {"x": 1}}, "simple-math-workflow"),
        (
            {"workflow": math_definition("idem-422"), "input": {"x": 1}, "executionId": "named"},
            "named",
        ),
    ],
)
def test_the_key_with_another_request_is_422_and_runs_nothing(
    client: Client, second: dict[str, Any], reason: str
) -> None:
    first = post(client, {"workflow": math_definition("idem-422"), "input": {"x": 1}}, key="k-1")
    assert first.status_code == 200

    response = post(client, second, key="k-1")

    assert response.status_code == 422, response.content
    message = response.json()["error"]
    assert "Idempotency-Key 'k-1'" in message
    assert first.json()["executionId"] in message
    assert reason in message
    assert Execution.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_library_workflow_is_matched_by_its_id(client: Client) -> None:
    body = {"workflowId": "simple-math-workflow"}
    first = post(client, body, key="lib-key").json()
    again = post(client, body, key="lib-key")
    assert again.status_code == 200
    assert again.json()["executionId"] == first["executionId"]
    # Another key is another run.
    other = post(client, body, key="lib-key-2")
    assert other.json()["executionId"] != first["executionId"]
    assert Execution.objects.count() == 2


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("", "must not be empty"),
        ("k" * 201, "201 characters"),
        ("caf\u00e9", "printable ASCII"),
        ("tab\tinside", "printable ASCII"),
    ],
)
def test_an_unusable_key_is_400_and_runs_nothing(client: Client, key: str, message: str) -> None:
    response = post(client, {"workflowId": "simple-math-workflow"}, key=key)
    assert response.status_code == 400, response.content
    assert message in response.json()["error"]
    assert not Execution.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_key_of_200_characters_is_kept_whole(client: Client) -> None:
    key = "k" * 199 + "!"
    first = post(client, {"workflowId": "simple-math-workflow"}, key=key)
    assert first.status_code == 200
    again = post(client, {"workflowId": "simple-math-workflow"}, key=key)
    assert again.json()["executionId"] == first.json()["executionId"]


@pytest.mark.django_db(transaction=True)
def test_requests_racing_with_one_key_start_one_run(client: Client) -> None:
    body = {"workflow": math_definition("idem-race"), "async": True}
    barrier = threading.Barrier(6)
    answers: list[tuple[int, str]] = []

    def send() -> None:
        barrier.wait()
        response = post(Client(enforce_csrf_checks=True), body, key="race")
        answers.append((response.status_code, response.json().get("executionId", "")))

    threads = [threading.Thread(target=send) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(status for status, _ in answers) == [200] * 5 + [202]
    assert len({execution_id for _, execution_id in answers}) == 1
    assert Execution.objects.count() == 1


@pytest.fixture
def silent_broker() -> Iterator[int]:
    """A port that accepts TCP connections and never says a word (a hung broker): the kernel
    completes the handshakes into the listen backlog, and nothing ever reads or writes."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        yield int(sock.getsockname()[1])


def _queue_server(tmp_path: Path, broker_url: str) -> DaphneServer:
    return DaphneServer(
        tmp_path,
        env={
            "C4C_DISPATCH": "celery",
            "CELERY_BROKER_URL": broker_url,
            "C4C_CELERY_QUEUE": f"c4c-h11-{uuid.uuid4().hex[:8]}",
        },
    )


@pytest.mark.slow
@pytest.mark.parametrize("broker", ["silent", "refusing"])
def test_a_broker_that_cannot_take_the_run_is_503_and_the_same_request_is_accepted_later(
    tmp_path: Path, silent_broker: int, broker: str
) -> None:
    port = silent_broker if broker == "silent" else free_port()
    server = _queue_server(tmp_path, f"redis://127.0.0.1:{port}/0")
    server.start()
    body = {"workflowId": "simple-math-workflow", "executionId": "h11-queued", "async": True}
    headers = {"Idempotency-Key": "submit-once"}
    queue = server.extra_env["C4C_CELERY_QUEUE"]
    try:
        started = time.monotonic()
        status, answer_headers, answer = http(
            "POST", f"{server.url}/workflow/execute", body, headers
        )
        took = time.monotonic() - started

        assert status == 503, answer
        assert took < 10, f"the POST took {took:.1f} s"
        assert answer_headers["Retry-After"].isdigit()
        _, _, listing = http("GET", f"{server.url}/workflow/executions")
        assert listing["stats"]["running"] == 0

        # The broker is back (a real Redis): the very same request is accepted, not 409.
        server.extra_env["CELERY_BROKER_URL"] = "redis://127.0.0.1:6379/13"
        server.restart()
        status, _, answer = http("POST", f"{server.url}/workflow/execute", body, headers)
        assert status == 202, answer
        assert answer["executionId"] == "h11-queued"
        status, _, again = http("POST", f"{server.url}/workflow/execute", body, headers)
        assert status == 200, again
        assert again["executionId"] == "h11-queued"

        # No worker serves this queue: the run waits there, and cancel ends it where it waits.
        status, _, cancelled = http(
            "POST", f"{server.url}/workflow/executions/h11-queued/cancel", {}
        )
        assert status == 200, cancelled
        assert cancelled["execution"]["status"] == "cancelled"
    finally:
        server.stop()
        redis.Redis.from_url("redis://127.0.0.1:6379/13").delete(queue)
