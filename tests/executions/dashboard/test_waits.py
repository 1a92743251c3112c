"""The dashboard shows parked runs (workflows.waits) as their own state: the detail page says
what a run waits for and offers Approve / Reject to whoever may send signals, the list counts,
marks and filters waiting runs, and a subworkflow's parent and child link to each other.

Runs go through the real runtime and engine (a wait parks the run on the calling thread); a
child execution runs on the pool, hence the committing database.
"""

import json
import time
from typing import Any

import pytest

from executions import dispatch, runtime
from executions.models import Execution
from executions.templatetags.dashboard import STATUS_GLYPHS
from tests import factories
from workflows.library import workflow_library

in_process = pytest.mark.django_db(transaction=True)
OPERATOR = "executions.execute_workflow"
VIEWER = "executions.view_execution"


def _run(workflow: dict[str, Any] | str) -> Execution:
    """A run of a library workflow (by id) or of an inline one, until it parks or ends."""
    if isinstance(workflow, str):
        definition = workflow_library().get(workflow)
        assert definition is not None, f"no workflow {workflow} in the library"
    else:
        definition = factories.definition(workflow)
    output = runtime.execute(definition=definition, input={})
    return Execution.objects.get(execution_id=output.body["executionId"])


def _sleeper() -> dict[str, Any]:
    return {
        "id": "sleeper",
        "name": "Sleeper",
        "startNode": "nap",
        "nodes": [
            {"id": "nap", "type": "sleep", "config": {"durationMs": 3_600_000}, "next": "after"},
            {"id": "after", "type": "procedure", "procedureName": "custom.log"},
        ],
    }


def _json_script(html: str, element_id: str) -> Any:
    script = html.split(f'<script id="{element_id}" type="application/json">', 1)[1]
    return json.loads(script.split("</script>", 1)[0])


def _waiting(execution_id: str, timeout: float = 10) -> Execution:
    """The execution once it has parked (a child starts on a pool thread)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = Execution.objects.filter(execution_id=execution_id).first()
        if row is not None and row.status == "waiting":
            return row
        time.sleep(0.02)
    raise AssertionError(f"{execution_id} did not park in {timeout}s")


def test_waiting_and_sleeping_have_their_own_glyphs_in_the_one_table():
    run_states = ("running", "completed", "failed", "cancelled", "pending", "skipped")
    taken = {STATUS_GLYPHS[status] for status in run_states}
    assert STATUS_GLYPHS["waiting"] not in taken
    assert STATUS_GLYPHS["sleeping"] not in {*taken, STATUS_GLYPHS["waiting"]}


@in_process
def test_a_run_waiting_for_approval_says_so_and_offers_approve_and_reject(client):
    execution = _run("approval-workflow")
    html = client.get(f"/executions/{execution.execution_id}").content.decode()

    assert 'class="status status-waiting"' in html
    assert "Waiting for signal <strong" in html
    assert ">approval</strong> (an approval), until" in html  # its timeout
    assert 'data-node-id="approve" data-status="waiting"' in html
    # Nodes not reached yet are pending while the run waits, not skipped as in an ended run.
    assert 'data-node-id="decide" data-status="pending"' in html
    assert html.count('data-signal="approval" data-approved="true"') == 1
    assert 'data-signal="approval" data-approved="false"' in html
    assert 'data-action="cancel"' in html
    assert f"/workflow/executions/{execution.execution_id}/signals/__signal__" in html
    assert _json_script(html, "wait-nodes") == {
        "approve": {"type": "wait", "signal": "approval", "approval": True}
    }
    assert _json_script(html, "node-details")["approve"]["waitingFor"] == "signal:approval"


@in_process
def test_the_live_partials_carry_the_wait_and_the_decision(client):
    execution = _run("approval-workflow")
    data = client.get(f"/executions/{execution.execution_id}/live").json()
    assert data["status"] == "waiting"
    assert "Waiting for signal" in data["header"]
    assert "Approve" in data["actions"]
    assert data["nodes"]["approve"]["status"] == "waiting"


@in_process
def test_approve_and_reject_are_offered_only_to_who_may_send_signals(client, settings):
    execution = _run("approval-workflow")
    settings.C4C_REQUIRE_AUTH = True
    url = f"/executions/{execution.execution_id}"

    client.force_login(factories.user(permissions=[VIEWER]))
    html = client.get(url).content.decode()
    assert "Waiting for signal" in html
    assert "data-approved" not in html
    assert 'data-may-signal="false"' in html
    assert "data-approved" not in client.get(f"{url}/live").json()["actions"]

    client.force_login(factories.user(permissions=[VIEWER, OPERATOR]))
    html = client.get(url).content.decode()
    assert 'data-approved="true"' in html
    assert 'data-may-signal="true"' in html


@in_process
def test_a_wait_that_is_no_approval_offers_no_approve_button(client):
    execution = _run(
        {
            "id": "hold",
            "name": "Hold",
            "startNode": "hold",
            "nodes": [{"id": "hold", "type": "wait", "config": {"signal": "go"}}],
        }
    )
    html = client.get(f"/executions/{execution.execution_id}").content.decode()
    assert ">go</strong>" in html
    assert "until" not in html.split("data-waits", 1)[1].split("</ul>", 1)[0]  # no timeout
    assert "data-approved" not in html
    assert _json_script(html, "wait-nodes")["hold"] == {
        "type": "wait",
        "signal": "go",
        "approval": False,
    }


@in_process
def test_a_sleeping_run_says_until_when(client):
    execution = _run(_sleeper())
    html = client.get(f"/executions/{execution.execution_id}").content.decode()
    wake_at = execution.lease_expires_at
    assert wake_at is not None
    assert 'data-node-id="nap" data-status="sleeping"' in html
    assert "Waiting until <time" in html
    assert f'datetime="{wake_at.isoformat()}"' in html
    assert wake_at.strftime("%Y-%m-%d %H:%M:%S") in html
    assert "status-sleeping" in html
    assert _json_script(html, "node-details")["nap"]["wakeAt"]


@in_process
def test_the_list_counts_marks_and_filters_waiting_runs(client):
    sleeping = _run(_sleeper())
    done = factories.execution(status="completed")

    html = client.get("/executions").content.decode()
    assert 'data-stat="waiting">1<' in html
    row = html.split(f'data-execution-id="{sleeping.execution_id}"', 1)[1].split("</tr>", 1)[0]
    assert "status-waiting" in row
    assert "until <time" in row
    assert f'data-elapsed-since="{sleeping.started_at.isoformat()}">waiting<' in row
    assert '<option value="waiting">Waiting</option>' in html

    filtered = client.get("/executions?status=waiting").content.decode()
    assert sleeping.execution_id in filtered
    assert done.execution_id not in filtered
    live = client.get("/executions/live?status=waiting").json()
    assert 'data-stat="waiting">1<' in live["stats"]
    assert sleeping.execution_id in live["body"]

    api = client.get("/workflow/executions?status=waiting")
    assert api.status_code == 200
    assert [e["executionId"] for e in api.json()["executions"]] == [sleeping.execution_id]


@in_process
def test_a_subworkflow_parent_and_its_child_link_to_each_other(client):
    parent = _run(
        {
            "id": "asks-a-child",
            "name": "Asks a child",
            "startNode": "ask",
            "nodes": [
                {
                    "id": "ask",
                    "type": "subworkflow",
                    "config": {"workflowId": "approval-workflow", "input": {}},
                }
            ],
        }
    )
    child = _waiting(Execution.objects.get(parent=parent).execution_id)
    parent = _waiting(parent.execution_id)

    html = client.get(f"/executions/{parent.execution_id}").content.decode()
    child_url = f"/executions/{child.execution_id}"
    assert f'Waiting for child execution <a class="mono" href="{child_url}">' in html
    assert f'<a class="node-child" href="{child_url}" data-child-of="ask"' in html
    assert "data-approved" not in html  # the approval is the child's

    html = client.get(child_url).content.decode()
    assert (
        f'Started by <a class="mono" href="/executions/{parent.execution_id}">'
        f"{parent.execution_id}</a> (node <span"
    ) in html

    rows = client.get("/executions").content.decode()
    row = rows.split(f'data-execution-id="{child.execution_id}"', 1)[1].split("</tr>", 1)[0]
    assert f'child of <a class="mono" href="/executions/{parent.execution_id}">' in row


@in_process
def test_a_finished_subworkflow_node_links_the_child_it_ran(client):
    parent = _run(
        {
            "id": "math-child",
            "name": "Math child",
            "startNode": "math",
            "nodes": [
                {
                    "id": "math",
                    "type": "subworkflow",
                    "config": {"workflowId": "simple-math-workflow", "input": {}},
                }
            ],
        }
    )
    deadline = time.monotonic() + 15
    while Execution.objects.get(pk=parent.pk).status != "completed":
        assert time.monotonic() < deadline, "the parent did not end"
        dispatch.sweep(requeue=False)
        time.sleep(0.02)
    child = Execution.objects.get(parent=parent)
    html = client.get(f"/executions/{parent.execution_id}").content.decode()
    assert f'<a class="node-child" href="/executions/{child.execution_id}"' in html
    assert "data-waits" not in html
