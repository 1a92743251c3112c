"""What the list stream carries per run: the seed's order, small node updates, fresh stats."""

import json
from typing import Any
from unittest import mock

import django_eventstream.eventstream
import django_eventstream.utils
import pytest
from django_eventstream.utils import get_storage
from django_eventstream.views import Listener, get_listener_manager

from executions.live import events
from executions.models import ExecutionCounter
from tests import factories

pytestmark = pytest.mark.django_db


def _list_events(since: int) -> list[tuple[str, dict[str, Any]]]:
    stored = get_storage().get_events(events.LIST_CHANNEL, since, limit=1_000)
    return [(e.type, json.loads(e.data)) for e in stored]


def _run(math_workflow) -> list[tuple[str, dict[str, Any]]]:
    since = get_storage().get_current_id(events.LIST_CHANNEL)
    factories.finished_run(workflow=math_workflow, execution_id="events-1")
    return _list_events(since)


def test_node_updates_carry_only_the_node_that_changed(math_workflow) -> None:
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


def test_every_update_carries_the_counters_as_stored_when_it_is_sent(math_workflow) -> None:
    # The test's transaction holds every event until the run is over, so all see the end state.
    sent = _run(math_workflow)
    stats = [data["stats"] for name, data in sent if name == "executions.update"]
    assert len(stats) == 5
    assert all(s == ExecutionCounter.objects.stats() for s in stats)
    assert stats[-1] == {"total": 1, "completed": 1, "failed": 0, "running": 0, "waiting": 0}


def test_run_events_keep_c4c_fields_and_leave_out_absent_ones(math_workflow) -> None:
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
