"""span.ended: a run's spans are saved and pushed while it goes on, each once, before its end."""

import json
import time
from typing import Any

import pytest
from django_eventstream.utils import get_storage
from pydantic import BaseModel

from executions import runtime
from executions.live import events
from executions.models import Span
from tests import factories
from workflows.context import ProcedureContext
from workflows.definitions import WorkflowDefinition
from workflows.registry import ProcedureRegistry, procedure

pytestmark = pytest.mark.django_db


def _sent(channel: str, run: Any) -> list[tuple[str, dict[str, Any]]]:
    since = get_storage().get_current_id(channel)
    run()
    return [(e.type, json.loads(e.data)) for e in get_storage().get_events(channel, since, 1_000)]


def _ended(sent: list[tuple[str, dict[str, Any]]]) -> list[str]:
    return [span["spanId"] for name, data in sent if name == "span.ended" for span in data["spans"]]


def test_every_span_goes_out_once_before_the_run_ends(math_workflow) -> None:
    sent = _sent(
        events.execution_channel("spans-1"),
        lambda: factories.finished_run(workflow=math_workflow, execution_id="spans-1"),
    )
    names = [name for name, _ in sent]
    ended = _ended(sent)
    stored = Span.objects.filter(execution__execution_id="spans-1")
    assert len(ended) == len(set(ended))
    assert set(ended) == set(stored.values_list("span_id", flat=True))
    last_batch = max(i for i, name in enumerate(names) if name == "span.ended")
    assert last_batch < names.index("workflow.completed") < names.index("workflow.result")
    result = dict(sent)["workflow.result"]["result"]
    assert {span["spanId"] for span in result["spans"]} == set(ended)


def test_a_run_shorter_than_a_batch_saves_its_spans_once_at_its_end(
    math_workflow, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runtime, "SPAN_BATCH_SECONDS", 60)
    sent = _sent(
        events.execution_channel("spans-5"),
        lambda: factories.finished_run(workflow=math_workflow, execution_id="spans-5"),
    )
    names = [name for name, _ in sent]
    assert names.count("span.ended") == 1
    assert names.index("span.ended") > max(i for i, n in enumerate(names) if n == "node.completed")
    assert len(_ended(sent)) == Span.objects.filter(execution__execution_id="spans-5").count()


def test_the_list_stream_never_carries_span_ended(math_workflow) -> None:
    sent = _sent(
        events.LIST_CHANNEL,
        lambda: factories.finished_run(workflow=math_workflow, execution_id="spans-2"),
    )
    assert "workflow.result" in dict(sent)
    assert "span.ended" not in dict(sent)


class Nothing(BaseModel):
    pass


class Saved(BaseModel):
    spans: list[str]


@pytest.fixture
def saved_spans(monkeypatch: pytest.MonkeyPatch) -> None:
    """`test.saved_spans`: the names of the spans its run has saved when it runs."""
    own = ProcedureRegistry()

    @procedure("test.saved_spans", registry=own)
    def saved(data: Nothing, ctx: ProcedureContext) -> Saved:
        rows = Span.objects.filter(execution__execution_id=ctx.execution_id)
        return Saved(spans=sorted(rows.values_list("name", flat=True)))

    factories.procedures(monkeypatch, own)


def test_a_due_batch_is_saved_before_the_next_node_runs(
    saved_spans: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runtime, "SPAN_BATCH_SECONDS", 0)
    workflow = WorkflowDefinition.model_validate(
        {
            "id": "saved-spans",
            "name": "Saved spans",
            "startNode": "add",
            "nodes": [
                {
                    "id": "add",
                    "type": "procedure",
                    "procedureName": "math.add",
                    "config": {"a": 1, "b": 2},
                    "next": "look",
                },
                {"id": "look", "type": "procedure", "procedureName": "test.saved_spans"},
            ],
        }
    )
    execution = factories.finished_run(workflow=workflow, execution_id="spans-3")
    # What a crash at that moment would have kept: the first node's span and its procedure's.
    assert execution.outputs["look"] == {"spans": ["math.add", "workflow.node.procedure"]}
    assert Span.objects.filter(execution=execution).count() == 5
    # Noted with them: the root they hang from, which a takeover saves if this process dies.
    execution.refresh_from_db()
    root = Span.objects.get(execution=execution, parent_span_id="")
    assert (execution.trace_id, execution.root_span_id) == (root.trace_id, root.span_id)


class Count(BaseModel):
    saved: int


@pytest.fixture
def waits_for_spans(monkeypatch: pytest.MonkeyPatch) -> None:
    """`test.waits_for_spans`: a long node. It waits (5 s at most) until its run has saved four
    spans, and says how many it found."""
    own = ProcedureRegistry()

    @procedure("test.waits_for_spans", registry=own)
    def waits(data: Nothing, ctx: ProcedureContext) -> Count:
        rows = Span.objects.filter(execution__execution_id=ctx.execution_id)
        deadline = time.monotonic() + 5
        while rows.count() < 4 and time.monotonic() < deadline:
            time.sleep(0.01)
        return Count(saved=rows.count())

    factories.procedures(monkeypatch, own)


@pytest.mark.django_db(transaction=True)
def test_spans_that_ended_just_before_a_long_node_are_saved_while_it_runs(
    waits_for_spans: None, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.C4C_CANCEL_CHECK_SECONDS = 0.05
    monkeypatch.setattr(runtime, "SPAN_BATCH_SECONDS", 0.1)
    add = {"type": "procedure", "procedureName": "math.add", "config": {"a": 1, "b": 2}}
    workflow = WorkflowDefinition.model_validate(
        {
            "id": "long-node",
            "name": "Long node",
            "startNode": "first",
            "nodes": [
                {"id": "first", **add, "next": "second"},
                {"id": "second", **add, "next": "long"},
                {"id": "long", "type": "procedure", "procedureName": "test.waits_for_spans"},
            ],
        }
    )
    execution = factories.finished_run(workflow=workflow, execution_id="spans-4")
    # No batch was due at a node's start (the first is due 0.1 s into the run): the heartbeat
    # saved both nodes' spans while the long node ran, not after its end.
    assert execution.outputs["long"] == {"saved": 4}
