"""The detail page's run control: Cancel while running, Re-run once ended, a re-run's origin and
reused nodes, a retried node's attempts. (The buttons' behaviour is pinned in tests/browser.)"""

import json
import re
from datetime import timedelta
from typing import Any

from django.test import Client
from django.utils import timezone

from executions import store
from executions.models import Execution, NodeExecution
from tests import factories
from workflows.observer import ErrorInfo


def _page(client: Client, execution: Execution) -> str:
    response = client.get(f"/executions/{execution.execution_id}")
    assert response.status_code == 200
    html: str = response.content.decode()
    return html


def _node_details(html: str) -> dict[str, Any]:
    script = html.split('<script id="node-details" type="application/json">', 1)[1]
    details: dict[str, Any] = json.loads(script.split("</script>", 1)[0])
    return details


def _rerun(original: Execution, from_node: str) -> Execution:
    """A re-run of `original` from `from_node`, recorded as runtime.rerun records one."""
    rows = list(NodeExecution.objects.checkpoints_of(original))
    first = next(row for row in rows if row.node_id == from_node)
    now = timezone.now()
    execution = store.execution_start(
        execution_id=f"{original.execution_id}-again",
        definition=factories.definition(original.definition),
        input=original.input,
        started_at=now,
        rerun_of=original.execution_id,
        rerun_from_node=from_node,
    )
    store.nodes_reuse(
        execution=execution, originals=[r for r in rows if r.sequence < first.sequence], at=now
    )
    return execution


def test_a_running_execution_offers_cancel_behind_a_confirmation(client, db):
    execution = factories.execution(status="running", nodes={"add": "running"})
    html = _page(client, execution)
    assert 'data-action="cancel" aria-haspopup="dialog">Cancel run…</button>' in html
    assert 'data-action="rerun"' not in html
    assert '<dialog id="cancel-dialog"' in html
    assert 'aria-labelledby="cancel-title"' in html
    assert "data-cancel-keep autofocus>Keep running</button>" in html
    assert f'data-cancel-url="/workflow/executions/{execution.execution_id}/cancel"' in html


def test_an_ended_execution_offers_rerun_and_names_the_api_it_posts_to(client, db):
    for status in ("completed", "failed", "cancelled"):
        execution = factories.execution(status=status, nodes={"add": "completed"})
        html = _page(client, execution)
        assert '<button type="button" class="btn" data-action="rerun">Re-run</button>' in html
        assert 'data-action="cancel"' not in html
        assert f'data-rerun-url="/workflow/executions/{execution.execution_id}/rerun"' in html
        assert 'data-detail-url="/executions/__id__"' in html


def test_a_rerun_links_its_original_and_marks_its_reused_nodes(client, db):
    original = factories.execution(
        nodes={"add": "completed", "multiply": "completed", "subtract": "completed"}
    )
    rerun = _rerun(original, "multiply")

    html = _page(client, rerun)

    assert (
        f'Re-run of <a class="mono" href="/executions/{original.execution_id}">'
        f"{original.execution_id}</a> from node"
    ) in html
    assert f'data-rerun-of="{original.execution_id}"' in html
    assert 'data-node-id="add" data-status="completed" data-reused="true"' in html
    # A node is named by its title and its status text, which says it was reused.
    assert 'aria-labelledby="g-name-add g-state-add"' in html
    assert re.search(r'id="g-state-add"[^>]*>.*?\(reused\)</tspan></text>', html)
    assert 'data-node-id="multiply" data-status="pending" transform' in html
    assert "reused from the original run" in html
    nodes = _node_details(html)
    assert nodes["add"]["reused"] is True
    assert "reused" not in nodes["multiply"]
    original_html = _page(client, original)
    assert "Re-run of" not in original_html
    assert "data-reused" not in original_html


def test_a_retried_node_carries_its_attempts_to_the_panel(client, db):
    execution = factories.execution(status="running", nodes={"add": "running"})
    row = NodeExecution.objects.get(execution=execution, node_id="add")
    assert row.started_at is not None
    failed_at = row.started_at + timedelta(milliseconds=5)
    store.node_attempt_fail(
        node=row,
        error=ErrorInfo("ConnectionError", "refused"),
        ended_at=failed_at,
        retry_at=failed_at + timedelta(seconds=1),
    )
    store.node_attempt_start(node=row, attempt=2, started_at=failed_at + timedelta(seconds=1))

    nodes = _node_details(_page(client, execution))

    attempts = nodes["add"]["attempts"]
    assert [(a["number"], a["status"]) for a in attempts] == [(1, "failed"), (2, "running")]
    assert attempts[0]["error"]["name"] == "ConnectionError"
    assert attempts[0]["retryAt"] == attempts[1]["startTime"]
    assert "endTime" not in attempts[1]


def test_live_parts_carry_the_actions_for_the_status_now(client, db, django_assert_num_queries):
    execution = factories.execution(status="running", nodes={"add": "running"})
    url = f"/executions/{execution.execution_id}/live"
    assert 'data-action="cancel"' in client.get(url).json()["actions"]

    store.execution_cancel(execution_id=execution.execution_id)
    with django_assert_num_queries(3):
        data = client.get(url).json()

    assert data["status"] == "cancelled"
    assert 'data-status="cancelled"' in data["actions"]
    assert 'data-action="rerun"' in data["actions"]
    assert 'data-action="cancel"' not in data["actions"]
