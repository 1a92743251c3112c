"""The list stream's c4c view: the newest page kept in memory and sent with every update.

No test here may use the database (none is marked django_db), so a keeper that read it for an
event would fail them: its page comes from the seed and the updates alone.
"""

import json
from typing import Any

import pytest
from django_eventstream.event import Event
from django_eventstream.views import get_listener_manager

from executions.live import pages
from executions.live.buffer import sse_frame
from executions.live.events import LIST_CHANNEL
from executions.live.payloads import Stats, validate_event

STATS: Stats = {"total": 3, "completed": 2, "failed": 0, "running": 1, "waiting": 0}


def summary(
    execution_id: str, second: int, status: str = "completed", **extra: Any
) -> dict[str, Any]:
    """An executions.update's summary of a run that started at 12:00:<second>."""
    return {
        "executionId": execution_id,
        "workflowId": "simple-math-workflow",
        "workflowName": "Simple Math Workflow",
        "status": status,
        "startTime": f"2026-01-01T12:00:{second:02d}.000Z",
        "outputs": {"add": {"result": 15}},
        "nodesExecuted": ["add"],
        "nodeDetails": {"add": {"nodeId": "add", "status": "completed", "duration": 1}},
        "nodeCount": 3,
        **extra,
    }


def update(event_id: int, *summaries: dict[str, Any], stats: Stats | None = None) -> Event:
    """An executions.update as the runtime sends it: the changed execution only."""
    data = {
        "type": "executions.update",
        "executions": list(summaries),
        "stats": stats or STATS,
        "timestamp": 1_800_000_000_000 + event_id,
    }
    return Event(LIST_CHANNEL, "executions.update", json.dumps(data), id=event_id)


def deliver(keeper: pages.PageKeeper, *events: Event) -> None:
    """What the listener manager does with each event: queue it, then wake the listener."""
    for event in events:
        keeper.channel_items.setdefault(LIST_CHANNEL, []).append(event)
        keeper.wake_threadsafe()


def page_of(event: Event) -> Any:
    frame = pages.page_frame(event).decode()
    data = "".join(line[6:] for line in frame.splitlines() if line.startswith("data: "))
    validate_event("executions.update", data)
    return json.loads(data)


def ids(event: Event) -> list[str]:
    return [row["executionId"] for row in page_of(event)["executions"]]


@pytest.fixture
def keeper(monkeypatch) -> pages.PageKeeper:
    """A seeded keeper of three rows, standing in for this process's."""
    kept = pages.PageKeeper(size=3)
    kept.seed(10, [summary("c", 3), summary("b", 2), summary("a", 1)], STATS)
    monkeypatch.setattr(pages, "_keeper", kept)
    return kept


def test_an_update_carries_the_newest_page_with_the_stats_it_was_sent_with(keeper) -> None:
    stats: Stats = {"total": 4, "completed": 2, "failed": 0, "running": 2, "waiting": 0}
    event = update(11, summary("d", 4, "running"), stats=stats)
    deliver(keeper, event)
    page = page_of(event)
    assert [row["executionId"] for row in page["executions"]] == ["d", "c", "b"]
    assert page["executions"][0]["status"] == "running"
    assert page["stats"] == stats
    assert page["timestamp"] == 1_800_000_000_011


def test_rows_leave_out_outputs_and_node_details(keeper) -> None:
    event = update(11, summary("d", 4))
    deliver(keeper, event)
    assert all(
        "outputs" not in row and "nodeDetails" not in row for row in page_of(event)["executions"]
    )
    assert page_of(event)["executions"][0]["nodesExecuted"] == ["add"]


def test_a_listed_execution_keeps_its_place_and_an_older_one_stays_out(keeper) -> None:
    changed, older = update(11, summary("b", 2, "failed")), update(12, summary("z", 0))
    deliver(keeper, changed, older)
    assert ids(changed) == ids(older) == ["c", "b", "a"]
    assert page_of(changed)["executions"][1]["status"] == "failed"


def test_each_update_keeps_the_page_as_it_was_after_it(keeper) -> None:
    first, second = update(11, summary("d", 4, "running")), update(12, summary("d", 4))
    deliver(keeper, first, second)
    assert page_of(first)["executions"][0]["status"] == "running"
    assert page_of(second)["executions"][0]["status"] == "completed"


def test_every_client_writes_the_same_frame_encoded_once(keeper) -> None:
    events = [update(11 + n, summary(f"new-{n}", 10 + n)) for n in range(20)]
    deliver(keeper, *events)
    frames = [pages.page_frame(event) for event in events]
    # Forty clients writing the latest batch of updates write the very same bytes objects.
    batch = events[-5:]
    for _ in range(40):
        assert all(pages.page_frame(e) is f for e, f in zip(batch, frames[-5:], strict=True))
    # An older update, framed again for a client replaying it, is the same bytes.
    assert [pages.page_frame(event) for event in events] == frames
    assert ids(events[-1]) == ["new-19", "new-18", "new-17"]


def test_other_events_go_as_they_were_sent(keeper) -> None:
    started = Event(LIST_CHANNEL, "workflow.started", '{"type":"workflow.started"}', id=11)
    assert pages.page_frame(started) == sse_frame(started)


def test_a_row_that_cannot_be_encoded_is_listed_as_its_marker(keeper) -> None:
    broken = summary("d", 4, error={"name": "E", "message": "\ud800", "stack": ""})
    event = update(11, broken)
    event.data = json.dumps(json.loads(event.data), ensure_ascii=False)
    deliver(keeper, event)
    row = page_of(event)["executions"][0]
    assert row["executionId"] == "d"
    assert "not valid Unicode" in row["cannotBeShown"]


def test_a_fresh_read_reapplies_the_updates_it_may_predate(keeper) -> None:
    deliver(keeper, update(11, summary("d", 4, "running")), update(12, summary("d", 4)))
    # Read after event 11 was sent and before event 12 was: d is still running there.
    keeper.seed(11, [summary("d", 4, "running"), summary("c", 3), summary("b", 2)], STATS)
    after = update(13, summary("e", 5, "running"))
    deliver(keeper, after)
    assert ids(after) == ["e", "d", "c"]
    assert page_of(after)["executions"][1]["status"] == "completed"


def test_updates_that_arrive_before_the_first_seed_wait_for_it(monkeypatch) -> None:
    kept = pages.PageKeeper(size=3)
    monkeypatch.setattr(pages, "_keeper", kept)
    in_the_read, after_the_read = update(5, summary("a", 1)), update(6, summary("b", 2))
    deliver(kept, in_the_read, after_the_read)
    kept.seed(5, [summary("a", 1, "running")], STATS)
    assert ids(after_the_read) == ["b", "a"]
    # Event 5 is already in the read: its older news does not overwrite it.
    assert page_of(after_the_read)["executions"][1]["status"] == "running"


def test_an_update_read_from_storage_before_it_was_queued_is_applied_once(keeper) -> None:
    event = update(11, summary("d", 4))
    assert ids(event) == ["d", "c", "b"]
    deliver(keeper, event)
    assert [event_id for event_id, _ in keeper.applied] == [11]
    assert ids(event) == ["d", "c", "b"]


def test_the_page_is_kept_only_while_a_c4c_client_is_connected(monkeypatch) -> None:
    monkeypatch.setattr(pages, "_keeper", None)
    monkeypatch.setattr(pages, "_watchers", 0)

    def listening(keeper: pages.PageKeeper) -> bool:
        return keeper in get_listener_manager().listeners_by_channel.get(LIST_CHANNEL, set())

    first = pages.keep()
    assert pages.keep() is first
    assert listening(first)
    pages.release()
    assert pages.keeper() is first
    pages.release()
    assert pages.keeper() is None
    assert not listening(first)
    again = pages.keep()
    try:
        assert again is not first
        assert not again.seeded
    finally:
        pages.release()
