"""executions.initial: one snapshot shared by clients that connect while the list is unchanged."""

import json
from typing import Any

import pytest

from executions.live import streams
from executions.models import Execution
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def snapshots(monkeypatch) -> streams._SnapshotCache:
    cache = streams._SnapshotCache()
    monkeypatch.setattr(streams, "snapshots", cache)
    return cache


def _initial(frame: bytes) -> dict[str, Any]:
    lines = frame.decode().splitlines()
    assert lines[0] == "event: executions.initial"
    initial: dict[str, Any] = json.loads(
        "".join(line.removeprefix("data: ") for line in lines[1:] if line)
    )
    return initial


def test_clients_connecting_while_nothing_changes_share_one_snapshot(
    snapshots, math_workflow
) -> None:
    factories.finished_run(workflow=math_workflow, execution_id="shared-1")
    first = snapshots.frame()
    assert snapshots.frame() is first
    assert [e["executionId"] for e in _initial(first)["executions"]] == ["shared-1"]


def test_a_new_list_event_makes_the_next_client_get_a_fresh_snapshot(
    snapshots, math_workflow
) -> None:
    factories.finished_run(workflow=math_workflow, execution_id="fresh-1")
    before = snapshots.frame()
    factories.finished_run(workflow=math_workflow, execution_id="fresh-2")
    after = _initial(snapshots.frame())
    assert before is not snapshots.frame()
    assert [e["executionId"] for e in after["executions"]] == ["fresh-2", "fresh-1"]
    assert after["stats"] == {"total": 2, "completed": 2, "failed": 0, "running": 0, "waiting": 0}


def test_a_write_that_sends_no_event_shows_once_the_snapshot_ages_out(
    snapshots, math_workflow, monkeypatch
) -> None:
    factories.finished_run(workflow=math_workflow, execution_id="gone-1")
    cached = snapshots.frame()
    Execution.objects.filter(execution_id="gone-1").delete()
    assert snapshots.frame() is cached
    monkeypatch.setattr(streams, "SNAPSHOT_MAX_AGE_S", 0.0)
    assert _initial(snapshots.frame())["executions"] == []
