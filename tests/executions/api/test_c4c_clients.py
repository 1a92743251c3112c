"""Contract tests that replay what c4c's own clients send and read.

c4c's web UI (apps/workflow/src/app/executions/page.tsx in the c4c repository) posts
{"workflowId", "input": {}, "options": {"executionId"}} to execute, keeps its executions list as
the `executions` of the list stream's executions.initial and of every executions.update, and
prints durations and span times as the numbers it is given. Its trace tab counts spans whose
status is OK as successful.
"""

import itertools
import json
import random
import string
import time
from typing import Any

import pytest
from django.test import Client
from django_eventstream.utils import get_storage

from executions.live import events
from tests.conftest import DaphneServer
from tests.executions.conftest import SseEvent, http

UI_WORKFLOW = "simple-math-workflow"


def ui_execution_id() -> str:
    """What c4c's UI names a run: wf_exec_<ms>_<6 base-36 characters>."""
    suffix = "".join(random.choices(string.ascii_lowercase + string.digits, k=6))
    return f"wf_exec_{int(time.time() * 1000)}_{suffix}"


def ui_execute_body(execution_id: str) -> dict[str, Any]:
    """The body c4c's UI posts when Execute is pressed."""
    return {"workflowId": UI_WORKFLOW, "input": {}, "options": {"executionId": execution_id}}


def post(client: Client, body: Any) -> Any:
    return client.post("/workflow/execute", data=json.dumps(body), content_type="application/json")


@pytest.fixture
def client() -> Client:
    return Client(enforce_csrf_checks=True)


@pytest.mark.django_db(transaction=True)
def test_the_uis_execute_body_runs_under_the_id_it_chose(client: Client) -> None:
    chosen = ui_execution_id()
    response = post(client, ui_execute_body(chosen))
    assert response.status_code == 200, response.content
    result = response.json()
    assert (result["executionId"], result["status"]) == (chosen, "completed")
    assert "ignoredKeys" not in result
    detail = client.get(f"/workflow/executions/{chosen}")
    assert detail.status_code == 200
    assert detail.json()["execution"]["workflowId"] == UI_WORKFLOW


@pytest.mark.django_db(transaction=True)
def test_keys_c4c_ignores_are_ignored_and_named_in_the_answer(client: Client) -> None:
    body = ui_execute_body("ignored-1")
    body["options"]["timeoutMs"] = 500
    body["clientVersion"] = "0.4.1"
    response = post(client, body)
    assert response.status_code == 200, response.content
    result = response.json()
    assert (result["executionId"], result["status"]) == ("ignored-1", "completed")
    assert result["ignoredKeys"] == ["clientVersion", "options.timeoutMs"]

    accepted = post(client, {**ui_execute_body("ignored-2"), "async": True, "tags": ["a"]})
    assert accepted.status_code == 202, accepted.content
    assert accepted.json()["ignoredKeys"] == ["tags"]


@pytest.mark.django_db(transaction=True)
def test_the_same_id_at_the_top_and_in_options_names_one_run(client: Client) -> None:
    response = post(client, {**ui_execute_body("twice-1"), "executionId": "twice-1"})
    assert response.status_code == 200, response.content
    assert response.json()["executionId"] == "twice-1"


@pytest.mark.django_db
def test_two_different_ids_are_a_400_naming_both_and_run_nothing(client: Client) -> None:
    response = post(client, {**ui_execute_body("from-options"), "executionId": "from-top"})
    assert response.status_code == 400
    message = response.json()["error"]
    assert "executionId 'from-top'" in message
    assert "options.executionId 'from-options'" in message
    assert client.get("/workflow/executions").json()["executions"] == []


@pytest.mark.django_db
def test_options_that_are_not_an_object_are_a_400(client: Client) -> None:
    response = post(client, {"workflowId": UI_WORKFLOW, "options": "fast"})
    assert response.status_code == 400
    assert response.json()["error"].startswith("options: ")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _assert_integer_ms(spans: list[dict[str, Any]], nodes: dict[str, Any]) -> None:
    assert spans
    assert nodes
    for span in spans:
        times = (span["startTime"], span["endTime"], span["duration"])
        assert all(_is_int(t) for t in times), span
        assert span["duration"] == span["endTime"] - span["startTime"], span
    for node in nodes.values():
        assert _is_int(node["duration"]), node


@pytest.mark.django_db(transaction=True)
def test_durations_and_span_times_are_integer_milliseconds(client: Client) -> None:
    since = get_storage().get_current_id(events.execution_channel("ms-1"))
    result = post(client, ui_execute_body("ms-1")).json()
    execution = client.get("/workflow/executions/ms-1").json()["execution"]
    listed = client.get("/workflow/executions?fields=summary").json()["executions"][0]
    sent = get_storage().get_events(events.execution_channel("ms-1"), since, limit=100)
    [result_event] = [json.loads(e.data) for e in sent if e.type == "workflow.result"]

    assert _is_int(result["executionTime"])
    assert _is_int(execution["executionTime"])
    _assert_integer_ms(result["spans"], execution["nodeDetails"])
    _assert_integer_ms(execution["spans"], listed["nodeDetails"])
    _assert_integer_ms(result_event["result"]["spans"], execution["nodeDetails"])


@pytest.mark.django_db(transaction=True)
def test_every_span_of_a_successful_run_is_ok(client: Client) -> None:
    result = post(client, ui_execute_body("ok-1")).json()
    assert result["status"] == "completed"
    names = {span["name"] for span in result["spans"]}
    assert {"workflow.execute", "math.add", "math.multiply", "math.subtract"} <= names
    not_ok = [(s["name"], s["status"]) for s in result["spans"] if s["status"] != {"code": "OK"}]
    assert not_ok == []


@pytest.mark.django_db(transaction=True)
def test_a_failed_procedure_span_is_an_error_and_the_others_stay_ok(client: Client) -> None:
    body = {"workflowId": UI_WORKFLOW, "input": {}, "options": {"executionId": "err-1"}}
    body["workflow"] = {
        "id": "fails",
        "name": "Fails",
        "startNode": "boom",
        "nodes": [{"id": "boom", "type": "procedure", "procedureName": "math.add", "config": {}}],
    }
    del body["workflowId"]
    result = post(client, body).json()
    assert result["status"] == "failed"
    statuses = {span["name"]: span["status"]["code"] for span in result["spans"]}
    assert statuses["math.add"] == "ERROR"
    assert statuses["workflow.execute"] == "ERROR"


def _ui_list(seen: list[SseEvent]) -> list[list[str]]:
    """The executions list c4c's UI shows after each list event: it replaces its list with the
    event's `executions` on executions.initial and executions.update."""
    shown = []
    for event in seen:
        if event.event in ("executions.initial", "executions.update"):
            shown.append([row["executionId"] for row in event.data["executions"]])
    return shown


@pytest.mark.slow
def test_after_four_runs_the_uis_list_holds_all_four(shared_server: DaphneServer, sse) -> None:
    url = shared_server.url
    stream = sse(f"{url}/workflow/executions-stream")
    stream.wait_for(lambda seen: any(e.event == "executions.initial" for e in seen))
    ours = [ui_execution_id() + f"_{n}" for n in range(4)]
    for execution_id in ours:
        status, _, result = http("POST", f"{url}/workflow/execute", ui_execute_body(execution_id))
        assert (status, result["executionId"]) == (200, execution_id)

    def finished(seen: list[SseEvent]) -> bool:
        updates = [e.data for e in seen if e.event == "executions.update"]
        return bool(updates) and any(
            r["executionId"] == ours[-1] and r["status"] == "completed"
            for r in updates[-1]["executions"]
        )

    stream.wait_for(finished)
    time.sleep(0.2)
    lists = _ui_list(stream.events)
    final = lists[-1]
    assert final[:4] == ours[::-1]
    _, _, listing = http("GET", f"{url}/workflow/executions?fields=summary&limit=60")
    assert len(final) == min(50, listing["stats"]["total"])
    # The newest page: runs that started in the same millisecond may be listed in either order.
    assert set(final) <= {row["executionId"] for row in listing["executions"]}
    # No row ever vanishes: once a run is listed, every later list still holds it.
    for earlier, later in itertools.pairwise(lists):
        assert set(earlier) & set(ours) <= set(later)
    update = next(e.data for e in reversed(stream.events) if e.event == "executions.update")
    row = update["executions"][0]
    assert row["status"] == "completed"
    assert row["nodesExecuted"] == ["add", "multiply", "subtract"]
    assert isinstance(row["executionTime"], int)
    assert update["stats"]["completed"] >= 4


@pytest.mark.slow
def test_a_reconnecting_ui_resumes_with_the_same_pages(shared_server: DaphneServer, sse) -> None:
    url = shared_server.url
    first = sse(f"{url}/workflow/executions-stream")
    first.wait_for(lambda seen: any(e.event == "executions.initial" for e in seen))
    ours = [ui_execution_id() + f"_r{n}" for n in range(2)]
    http("POST", f"{url}/workflow/execute", ui_execute_body(ours[0]))
    first.wait_for(lambda seen: any(e.event == "workflow.result" for e in seen))
    resume_from = [e.id for e in first.events if e.id][-1]
    http("POST", f"{url}/workflow/execute", ui_execute_body(ours[1]))
    first.wait_for(
        lambda seen: any(
            e.event == "workflow.result" and e.data["executionId"] == ours[1] for e in seen
        )
    )
    time.sleep(0.2)
    second = sse(f"{url}/workflow/executions-stream", {"Last-Event-ID": resume_from})
    second.wait_for(
        lambda seen: any(
            e.event == "workflow.result" and e.data["executionId"] == ours[1] for e in seen
        )
    )
    time.sleep(0.2)

    def since_resume(seen: list[SseEvent]) -> list[tuple[str, str, Any]]:
        position = _position(resume_from)
        return [(e.id, e.event, e.data) for e in seen if e.id and _position(e.id) > position]

    replayed = since_resume(second.events)
    assert replayed == since_resume(first.events)
    # The shared server may carry other tests' runs (and the first run's last update) in the
    # same window, so the replay is checked for this run's events, not an exact count.
    run = [name for _, name, data in replayed if data.get("executionId") == ours[1]]
    assert (run[0], run[-1]) == ("workflow.started", "workflow.result")
    updates = [data for _, name, data in replayed if name == "executions.update"]
    # A page per change of the run (start, three nodes, end), those within
    # C4C_UPDATE_COALESCE_MS of each other merged: at least one while it runs and its end.
    assert len(updates) >= 2
    rows = {row["executionId"]: row for row in updates[-1]["executions"]}
    assert rows[ours[1]]["status"] == "completed"


def _position(event_id: str) -> int:
    return int(event_id.rsplit(":", 1)[1])


@pytest.mark.django_db
def test_an_unknown_view_is_refused_naming_the_views_there_are(client: Client) -> None:
    response = client.get("/workflow/executions-stream?view=everything")
    assert response.status_code == 400
    assert "view must be one of c4c, delta, not 'everything'" in response.content.decode()
