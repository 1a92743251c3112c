"""What the list stream carries per run: the seed's order, small node updates, fresh stats;
encoded only for a reader, and updates of one run coalesced."""

import inspect
import json
import time
from collections.abc import AsyncGenerator, Callable, Iterator
from typing import Any, cast
from unittest import mock

import django_eventstream.eventstream
import django_eventstream.utils
import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.http import HttpResponseBase, StreamingHttpResponse
from django.test import AsyncClient, Client, TestCase
from django_eventstream.utils import get_storage
from django_eventstream.views import Listener, get_listener_manager

from executions.live import buffer, events
from executions.live.buffer import BufferedEvent
from executions.live.payloads import ExecutionSummary
from executions.models import ExecutionCounter, ExecutionStatus
from executions.serializers import execution_summary
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def each_update_as_it_comes(settings) -> None:
    """No coalescing: one executions.update per change, as these tests count them."""
    settings.C4C_UPDATE_COALESCE_MS = 0


def _list_events(since: int) -> list[tuple[str, dict[str, Any]]]:
    stored = get_storage().get_events(events.LIST_CHANNEL, since, limit=1_000)
    return [(e.type, json.loads(e.data)) for e in stored]


def _run(math_workflow) -> list[tuple[str, dict[str, Any]]]:
    since = get_storage().get_current_id(events.LIST_CHANNEL)
    factories.finished_run(workflow=math_workflow, execution_id="events-1")
    return _list_events(since)


def test_node_updates_carry_only_the_node_that_changed(
    math_workflow, each_update_as_it_comes
) -> None:
    updates = [
        data["executions"][0] for name, data in _run(math_workflow) if name == "executions.update"
    ]
    assert [sorted(u["nodeDetails"]) for u in updates] == [
        [],
        ["add"],
        ["multiply"],
        ["subtract"],
        ["add", "multiply", "subtract"],
    ]
    assert updates[1]["nodeDetails"]["add"]["output"] == {"result": 15}
    assert updates[-1]["status"] == "completed"
    assert all(n["status"] == "completed" for n in updates[-1]["nodeDetails"].values())


def test_every_update_carries_the_counters_as_stored_when_it_is_sent(
    math_workflow, each_update_as_it_comes
) -> None:
    # The test's transaction holds every event until the run is over, so all see the end state.
    sent = _run(math_workflow)
    stats = [data["stats"] for name, data in sent if name == "executions.update"]
    assert len(stats) == 5
    assert all(s == ExecutionCounter.objects.stats() for s in stats)
    assert stats[-1] == {"total": 1, "completed": 1, "failed": 0, "running": 0, "waiting": 0}


def test_run_events_keep_c4c_fields_and_leave_out_absent_ones(
    math_workflow, each_update_as_it_comes
) -> None:
    sent = dict(_run(math_workflow)[:4])
    started = sent["workflow.started"]
    assert set(started) == {"type", "workflowId", "executionId", "timestamp", "startTime"}
    assert sent["node.started"] == {
        **sent["node.started"],
        "type": "node.started",
        "executionId": "events-1",
        "nodeId": "add",
        "nodeType": "procedure",
        "nodeIndex": 0,
    }
    finished = [data for name, data in _list_events(0) if name == "node.completed"][-1]
    assert finished["nodeId"] == "subtract"
    assert finished["status"] == "completed"
    assert "nextNodeId" not in finished
    assert "error" not in finished


def test_events_skip_grip_publishing_when_no_proxy_is_configured(math_workflow) -> None:
    with mock.patch("django_grip.publish") as grip_publish:
        sent = _run(math_workflow)
    assert grip_publish.call_count == 0
    assert [name for name, _ in sent].count("workflow.result") == 1


class _Draining(Listener):
    """A listener that takes each event as it is woken, as a stream does (the manager queues
    at most MAX_PENDING events for one that does not)."""

    def __init__(self, channel: str) -> None:
        super().__init__()
        self.channels = {channel}
        self.taken: list[Any] = []

    def wake_threadsafe(self) -> None:
        for channel in self.channels:
            self.taken.extend(self.channel_items.pop(channel, []))


def test_local_listeners_get_each_event_numbered_once_in_order(math_workflow) -> None:
    listener = _Draining(events.execution_channel("events-1"))
    get_listener_manager().add_listener(listener)
    try:
        _run(math_workflow)
    finally:
        get_listener_manager().remove_listener(listener)
    queued = listener.taken
    first = queued[0].id
    assert [e.id for e in queued] == list(range(first, first + len(queued)))
    assert [e.type for e in queued[:2]] == ["workflow.started", "node.started"]
    assert queued[-1].type == "workflow.result"


def test_a_configured_channel_manager_keeps_the_librarys_send_path(settings) -> None:
    assert events._resolve_sender() is not events._library_send
    settings.EVENTSTREAM_CHANNELMANAGER_CLASS = (
        "django_eventstream.channelmanager.DefaultChannelManager"
    )
    assert events._resolve_sender() is events._library_send


def test_ready_installs_the_fast_sender_and_the_silent_grip_publish() -> None:
    assert events._deliver is not events._library_send
    assert django_eventstream.eventstream.publish_event is events._no_grip_publish


def test_with_a_grip_proxy_install_keeps_the_librarys_publish_and_send(
    settings, monkeypatch
) -> None:
    library_publish = django_eventstream.utils.publish_event
    monkeypatch.setattr(django_eventstream.eventstream, "publish_event", library_publish)
    monkeypatch.setattr(events, "_deliver", events._deliver)
    settings.GRIP_URL = "http://127.0.0.1:5561"
    events.install()
    assert django_eventstream.eventstream.publish_event is library_publish
    assert events._deliver is events._library_send
    del settings.GRIP_URL
    events.install()
    assert django_eventstream.eventstream.publish_event is events._no_grip_publish
    assert events._deliver is not events._library_send


class _Encodes:
    """Counts the payloads encoded to JSON (the only call of buffer.encode outside events.py)."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, payload: Any) -> str:
        self.count += 1
        return events.encode(payload)


@pytest.fixture
def encodes(monkeypatch) -> _Encodes:
    """Counted encodes, with the contract checker (tests/conftest.py encodes every payload to
    check it) set aside: these tests are about what the real door encodes."""
    counter = _Encodes()
    monkeypatch.setattr(buffer, "encode", counter)
    monkeypatch.setattr(events, "_send", inspect.unwrap(events._send))
    return counter


def _buffered(channel: str) -> list[BufferedEvent]:
    return cast(list[BufferedEvent], get_storage().get_events(channel, 0, limit=1_000))


def test_events_nobody_listens_to_are_kept_unencoded(math_workflow, encodes) -> None:
    factories.finished_run(workflow=math_workflow, execution_id="unread-1")
    kept = _buffered(events.execution_channel("unread-1"))
    assert [e.type for e in kept][-1] == "workflow.result"
    assert encodes.count == 0
    assert all(e.frame is None for e in kept)
    # The result's text is the API's, encoded by the run: the event splices it in.
    assert [e.type for e in kept if e.payload.encoded] == ["workflow.result"]


def test_a_listened_channel_encodes_each_payload_once_for_every_reader(
    math_workflow, encodes
) -> None:
    listener = _Draining(events.execution_channel("read-1"))
    get_listener_manager().add_listener(listener)
    try:
        factories.finished_run(workflow=math_workflow, execution_id="read-1")
    finally:
        get_listener_manager().remove_listener(listener)
    queued = cast(list[BufferedEvent], listener.taken)
    assert all(e.frame is not None for e in queued)
    # Each payload once (the run's result came encoded), though most also went to the list.
    assert encodes.count == len(queued) - 1
    listed = [e for e in _buffered(events.LIST_CHANNEL) if e.payload in {q.payload for q in queued}]
    assert listed
    assert all(e.frame is None for e in listed)
    frames = [buffer.sse_frame(e) for e in listed]
    assert encodes.count == len(queued) - 1
    assert all(f.endswith(e.payload.lines()) for f, e in zip(frames, listed, strict=True))


def _stream_frames(
    path: str, until: bytes, opened: Callable[[], None] | None = None
) -> list[tuple[str, str | None, str]]:
    """(event, id, data) of a stream's frames, read until one carries `until`; `opened` runs once
    the stream has answered."""

    async def read() -> bytes:
        response: HttpResponseBase = await AsyncClient().get(path)
        assert isinstance(response, StreamingHttpResponse)
        if opened is not None:
            await sync_to_async(opened)()
        body = cast(AsyncGenerator[bytes], response.streaming_content)
        seen = b""
        try:
            while until not in seen:
                seen += await anext(body)
        finally:
            await body.aclose()
        return seen

    frames = []
    for block in async_to_sync(read)().decode().split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            key, _, value = line.partition(": ")
            fields[key] = fields[key] + "\n" + value if key in fields else value
        if "event" in fields:
            frames.append((fields["event"], fields.get("id"), fields.get("data", "")))
    return frames


def test_a_client_opening_a_finished_runs_stream_replays_each_event_once_in_order(
    math_workflow, encodes
) -> None:
    factories.finished_run(workflow=math_workflow, execution_id="late-1")
    kept = _buffered(events.execution_channel("late-1"))
    frames = _stream_frames("/workflow/executions/late-1/stream", b"event: workflow.result")
    replayed = [f for f in frames if f[1] is not None]
    assert [(name, data) for name, _, data in replayed] == [(e.type, e.data) for e in kept]
    ids = [int(str(event_id).rsplit(":", 1)[1]) for _, event_id, _ in replayed]
    assert ids == list(range(1, len(kept) + 1))
    assert encodes.count == len(kept) - 1


def test_a_stream_from_now_sends_only_what_happens_after_it_opened(math_workflow) -> None:
    """What our detail page opens: it has just read the run, so a replay of its past would only
    take the page back before moving it on again."""
    execution = factories.finished_run(workflow=math_workflow, execution_id="now-1")
    kept = _buffered(events.execution_channel("now-1"))

    def opened() -> None:
        with TestCase.captureOnCommitCallbacks(execute=True):
            events.emit_workflow_finished(execution)

    frames = _stream_frames(
        "/workflow/executions/now-1/stream?from=now", b"event: workflow.completed", opened
    )
    sent = [(name, event_id) for name, event_id, _ in frames if event_id is not None]
    assert sent == [("workflow.completed", f"{events.execution_channel('now-1')}:{len(kept) + 1}")]


def test_a_stream_from_anywhere_else_is_refused_naming_it() -> None:
    response = Client().get("/workflow/executions/now-2/stream?from=yesterday")
    assert response.status_code == 400
    assert response.json() == {
        "error": "Invalid request: from must be one of start, now, not 'yesterday'"
    }


def _list_names(since: int, execution_id: str) -> list[tuple[str, dict[str, Any]]]:
    def about(data: dict[str, Any]) -> bool:
        if "executions" in data:
            return bool(data["executions"][0]["executionId"] == execution_id)
        return bool(data.get("executionId") == execution_id)

    return [(name, data) for name, data in _list_events(since) if about(data)]


@pytest.fixture
def list_listened() -> Iterator[_Draining]:
    """A stream of the list in this process: updates are coalesced for it."""
    listener = _Draining(events.LIST_CHANNEL)
    get_listener_manager().add_listener(listener)
    yield listener
    get_listener_manager().remove_listener(listener)


@pytest.fixture
def long_window(settings, list_listened) -> Iterator[None]:
    """A window no test outlasts: only the run's end lets a held update go."""
    settings.C4C_UPDATE_COALESCE_MS = 60_000
    yield
    assert not events.updates.held, "an update was left held"


@pytest.fixture
def stats_reads(monkeypatch) -> Iterator[mock.Mock]:
    """Counts the stats reads, none made yet (no earlier read to reuse)."""
    monkeypatch.setattr(events.updates, "read", None)
    manager = type(ExecutionCounter.objects)
    with mock.patch.object(manager, "stats", autospec=True, side_effect=manager.stats) as read:
        yield read


def test_updates_of_a_list_nobody_listens_to_leave_at_once_sharing_a_recent_stats_read(
    math_workflow, settings, stats_reads
) -> None:
    settings.C4C_UPDATE_COALESCE_MS = 60_000
    since = get_storage().get_current_id(events.LIST_CHANNEL)
    factories.finished_run(workflow=math_workflow, execution_id="unheard-1")
    updates = [
        data for name, data in _list_names(since, "unheard-1") if name == "executions.update"
    ]
    assert [sorted(u["executions"][0]["nodeDetails"]) for u in updates] == [
        [],
        ["add"],
        ["multiply"],
        ["subtract"],
        ["add", "multiply", "subtract"],
    ]
    # The four of the running run within the window share one read; its last update reads anew.
    assert stats_reads.call_count == 2
    assert not events.updates.held


def test_an_update_of_a_list_nobody_listens_to_reads_the_stats_again_once_the_window_ended(
    math_workflow, settings, stats_reads
) -> None:
    execution = factories.finished_run(workflow=math_workflow, execution_id="unheard-2")
    execution.status = ExecutionStatus.RUNNING
    summary = cast(ExecutionSummary, execution_summary(execution, []))
    settings.C4C_UPDATE_COALESCE_MS = 50
    events.updates.read = None
    stats_reads.reset_mock()
    events.updates.add(summary)
    events.updates.add(summary)
    time.sleep(0.06)
    events.updates.add(summary)
    assert stats_reads.call_count == 2
    assert not events.updates.held


def test_updates_within_the_window_leave_as_one_before_the_runs_end(
    math_workflow, long_window
) -> None:
    since = get_storage().get_current_id(events.LIST_CHANNEL)
    factories.finished_run(workflow=math_workflow, execution_id="merged-1")
    sent = _list_names(since, "merged-1")
    assert [name for name, _ in sent if name != "node.started" and name != "node.completed"] == [
        "workflow.started",
        "executions.update",
        "workflow.completed",
        "workflow.result",
        "executions.update",
    ]
    held, last = [data["executions"][0] for name, data in sent if name == "executions.update"]
    # The start's update and the three nodes', merged: the latest state, every node's change.
    assert held["status"] == "running"
    assert {n: d["status"] for n, d in held["nodeDetails"].items()} == {
        "add": "completed",
        "multiply": "completed",
        "subtract": "completed",
    }
    assert held["nodeDetails"]["add"]["output"] == {"result": 15}
    assert last["status"] == "completed"


@pytest.mark.slow
def test_a_held_update_leaves_once_its_window_ends(math_workflow, settings, list_listened) -> None:
    execution = factories.finished_run(workflow=math_workflow, execution_id="held-1")
    execution.status = ExecutionStatus.RUNNING
    summary = cast(ExecutionSummary, execution_summary(execution, []))
    settings.C4C_UPDATE_COALESCE_MS = 300
    since = get_storage().get_current_id(events.LIST_CHANNEL)
    events.updates.add(summary)
    events.updates.add(summary)
    assert _list_names(since, "held-1") == []
    deadline = time.monotonic() + 10
    while not _list_names(since, "held-1") and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.4)
    assert [name for name, _ in _list_names(since, "held-1")] == ["executions.update"]
