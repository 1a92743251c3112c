"""The replay buffer: consecutive replay, a bound in bytes across channels, frames encoded once."""

import pytest
from django_eventstream.storage import EventDoesNotExist
from django_eventstream.utils import make_id

from executions.live.buffer import _Buffer, sse_frame


@pytest.fixture
def buffer(settings) -> _Buffer:
    settings.C4C_REPLAY_EVENTS = 500
    settings.C4C_REPLAY_CHANNELS = 100
    settings.C4C_REPLAY_BYTES = 64 * 1024
    return _Buffer()


def test_replay_returns_the_events_after_an_id_in_order(buffer: _Buffer) -> None:
    for i in range(10):
        buffer.append("a", "tick", f'{{"i":{i}}}')
    replayed = buffer.since("a", 3, limit=4)
    assert [e.id for e in replayed] == [4, 5, 6, 7]
    assert buffer.since("a", 10, limit=100) == []
    with pytest.raises(EventDoesNotExist):
        buffer.since("a", 11, limit=100)


def test_bytes_bound_drops_the_oldest_events_of_the_least_recent_channel(buffer: _Buffer) -> None:
    payload = '"' + "x" * 4_000 + '"'
    for _ in range(5):
        buffer.append("old", "big", payload)
    for _ in range(30):
        buffer.append("new", "big", payload)
    assert buffer.bytes <= 64 * 1024
    with pytest.raises(EventDoesNotExist, match="no longer buffered"):
        buffer.since("old", 0, limit=100)
    kept = buffer.since("new", buffer.current("new") - 3, limit=100)
    assert [e.id for e in kept] == [28, 29, 30]
    assert buffer.current("old") == 5


def test_an_event_bigger_than_the_bound_is_still_kept_until_the_next(buffer: _Buffer) -> None:
    huge = '"' + "y" * 100_000 + '"'
    buffer.append("a", "huge", huge)
    assert [e.data for e in buffer.since("a", 0, limit=10)] == [huge]
    buffer.append("a", "small", "1")
    assert [e.id for e in buffer.since("a", 1, limit=10)] == [2]


def test_count_and_channel_bounds_still_apply(buffer: _Buffer, settings) -> None:
    settings.C4C_REPLAY_EVENTS = 3
    settings.C4C_REPLAY_CHANNELS = 2
    for i in range(5):
        buffer.append("a", "tick", str(i))
    assert [e.id for e in buffer.since("a", 2, limit=10)] == [3, 4, 5]
    buffer.append("b", "tick", "1")
    buffer.append("c", "tick", "1")
    assert buffer.current("a") == 0
    assert buffer.bytes == sum(cost for s in buffer.channels.values() for _, cost in s.events)


def test_frame_is_encoded_once_with_the_channel_id(buffer: _Buffer) -> None:
    event = buffer.append("execution-x", "node.started", '{"a":1}\n{"b":2}')
    frame = sse_frame(event)
    assert frame is sse_frame(event)
    assert frame == b'event: node.started\nid: execution-x:1\ndata: {"a":1}\ndata: {"b":2}\n\n'


def test_frame_id_is_the_librarys_id_for_a_channel_that_needs_quoting(buffer: _Buffer) -> None:
    channel = "execution-a b,c:d"
    buffer.append(channel, "node.started", "{}")
    frame = sse_frame(buffer.append(channel, "node.completed", "{}"))
    assert f"id: {make_id({channel: 2})}\n".encode() in frame


def test_channels_sharing_a_payload_get_frames_differing_only_in_the_id(buffer: _Buffer) -> None:
    payload = '{"result":"' + "x" * 10_000 + '"}'
    own = sse_frame(buffer.append("execution-x", "workflow.result", payload))
    listed = sse_frame(buffer.append("executions", "workflow.result", payload))
    other = sse_frame(buffer.append("executions", "workflow.result", '{"a":1}\n{"b":2}'))
    body = f"data: {payload}\n\n".encode()
    assert own == b"event: workflow.result\nid: execution-x:1\n" + body
    assert listed == b"event: workflow.result\nid: executions:1\n" + body
    assert other == b'event: workflow.result\nid: executions:2\ndata: {"a":1}\ndata: {"b":2}\n\n'
