"""Django admin over executions: read-only, filterable, searchable, inlines in execution order."""

from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client

from executions import secrets
from executions.models import Execution
from tests import factories
from workflows.definitions import WorkflowDefinition

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/executions/execution/"
DONE = dict.fromkeys(("add", "multiply", "subtract"), "completed")


@pytest.fixture
def runs(math_workflow: WorkflowDefinition) -> list[Execution]:
    other = math_workflow.model_copy(update={"id": "other-flow"})
    return [
        factories.execution(
            workflow=math_workflow,
            execution_id="run-ok",
            started_at=datetime(2025, 3, 1, 12, tzinfo=UTC),
            nodes=DONE,
            spans=4,
        ),
        factories.execution(
            status="failed",
            workflow=math_workflow,
            execution_id="run-failed",
            started_at=datetime(2025, 3, 2, 12, tzinfo=UTC),
            nodes={"add": "completed", "multiply": "failed"},
            spans=3,
        ),
        factories.execution(
            workflow=other,
            execution_id="run-other",
            started_at=datetime(2025, 4, 5, 12, tzinfo=UTC),
            nodes=DONE,
            spans=4,
        ),
    ]


def _listed(client: Client, query: str = "") -> list[str]:
    response = client.get(f"{CHANGELIST}{query}")
    assert response.status_code == 200
    return [e.execution_id for e in response.context["cl"].result_list]


def test_changelist_lists_newest_first(admin_client: Client, runs) -> None:
    assert _listed(admin_client) == ["run-other", "run-failed", "run-ok"]


def test_changelist_filters_by_status_and_workflow(admin_client: Client, runs) -> None:
    assert _listed(admin_client, "?status__exact=failed") == ["run-failed"]
    assert _listed(admin_client, "?workflow_id__exact=other-flow") == ["run-other"]
    assert _listed(admin_client, "?status__exact=completed&workflow_id__exact=math-three") == [
        "run-ok"
    ]


def test_changelist_searches_by_execution_id(admin_client: Client, runs) -> None:
    assert _listed(admin_client, "?q=run-fail") == ["run-failed"]
    assert _listed(admin_client, "?q=no-such-run") == []


def test_changelist_drills_down_by_start_date(admin_client: Client, runs) -> None:
    response = admin_client.get(CHANGELIST)
    assert b"started_at__year=2025" in response.content
    assert _listed(admin_client, "?started_at__year=2025&started_at__month=3") == [
        "run-failed",
        "run-ok",
    ]
    assert _listed(
        admin_client, "?started_at__year=2025&started_at__month=3&started_at__day=1"
    ) == ["run-ok"]


def test_changelist_query_count_does_not_grow_with_rows(
    admin_client: Client, math_workflow: WorkflowDefinition, django_assert_num_queries
) -> None:
    start = datetime(2025, 1, 1, tzinfo=UTC)
    factories.execution(
        workflow=math_workflow, execution_id="first", started_at=start, nodes=DONE, spans=4
    )
    admin_client.get(CHANGELIST)
    with django_assert_num_queries(7):
        assert _listed(admin_client) == ["first"]
    for i in range(20):
        factories.execution(
            workflow=math_workflow,
            execution_id=f"more-{i}",
            started_at=start + timedelta(hours=i + 1),
            nodes=DONE,
            spans=4,
        )
    with django_assert_num_queries(7):
        assert len(_listed(admin_client)) == 21


def test_change_page_is_read_only_with_nodes_and_spans_in_execution_order(
    admin_client: Client, runs
) -> None:
    execution = runs[0]
    response = admin_client.get(f"{CHANGELIST}{execution.pk}/change/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Save" not in html
    assert 'name="execution_id"' not in html

    node_rows = response.context["inline_admin_formsets"][0]
    assert [f.original.node_id for f in node_rows] == ["add", "multiply", "subtract"]
    # The factory stores spans newest first: the inline must order them by start.
    span_rows = response.context["inline_admin_formsets"][1]
    assert [f.original.name for f in span_rows] == ["workflow.execute"] + [
        "workflow.node.procedure"
    ] * 3
    assert [f.original.attributes.get("node.id") for f in span_rows] == [None, "n1", "n2", "n3"]
    assert f'<a href="/executions/{execution.execution_id}">Open on the dashboard</a>' in html


def test_the_change_page_shows_no_sealed_secrets(admin_client: Client, runs) -> None:
    execution = runs[0]
    Execution.objects.filter(pk=execution.pk).update(sealed_secrets=secrets.seal({"k": "v"}))
    response = admin_client.get(f"{CHANGELIST}{execution.pk}/change/")
    assert response.status_code == 200
    assert "sealed" not in response.content.decode().lower()


def test_failed_node_and_error_show_on_the_change_page(admin_client: Client, runs) -> None:
    failed = runs[1]
    response = admin_client.get(f"{CHANGELIST}{failed.pk}/change/")
    node_rows = response.context["inline_admin_formsets"][0]
    assert [(f.original.node_id, f.original.status) for f in node_rows] == [
        ("add", "completed"),
        ("multiply", "failed"),
    ]
    assert "ValueError" in response.content.decode()


def test_executions_cannot_be_added_or_changed(admin_client: Client, runs) -> None:
    # Deleting goes through the store: tests/executions/test_prune.py.
    assert admin_client.get(f"{CHANGELIST}add/").status_code == 403
    response = admin_client.post(
        f"{CHANGELIST}{runs[0].pk}/change/", {"execution_id": "renamed", "status": "failed"}
    )
    assert response.status_code == 403
    assert Execution.objects.get(pk=runs[0].pk).execution_id == "run-ok"


def test_anonymous_user_is_sent_to_the_login_page(client: Client, runs) -> None:
    response = client.get(CHANGELIST)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
