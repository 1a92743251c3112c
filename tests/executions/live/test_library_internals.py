"""The django-eventstream internals executions.live relies on, with the shapes it uses them in.

live/events.py sends through the library's storage and listener manager (and swaps its GRIP
publish), live/buffer.py is a library storage, live/streams.py replaces its stream loop with the
library's Listener, Last-Event-ID parser and SSE helpers. None of that is the library's public
API, so the version is pinned to 5.3.x (pyproject.toml) and this file fails loudly on an upgrade
that moves or reshapes any of it.
"""

import asyncio
import inspect
from importlib.metadata import version

import django_eventstream
import django_eventstream.eventstream
import pytest
from django.test import RequestFactory
from django_eventstream import event, storage, utils, views

from executions.live import events


def _parameters(function: object) -> list[str]:
    return list(inspect.signature(function).parameters)  # type: ignore[arg-type]


def test_the_pinned_minor_version_is_installed() -> None:
    assert version("django-eventstream").startswith("5.3."), (
        "django-eventstream moved off 5.3: re-check every internal below, then docs/upstream/"
    )


def test_send_event_and_the_grip_publish_it_calls_live_where_events_patch_them() -> None:
    assert django_eventstream.send_event is django_eventstream.eventstream.send_event
    assert _parameters(django_eventstream.eventstream.send_event) == [
        "channel",
        "event_type",
        "data",
        "skip_user_ids",
        "async_publish",
        "json_encode",
    ]
    # send_event looks publish_event up in its own module at call time, so replacing it there
    # (events.install) is what silences the GRIP publish.
    source = inspect.getsource(django_eventstream.eventstream.send_event)
    assert "publish_event(" in source
    assert "redis_client" in source
    assert hasattr(django_eventstream.eventstream, "publish_event")
    assert _parameters(utils.publish_event)[:5] == [
        "channel",
        "event_type",
        "data",
        "pub_id",
        "pub_prev_id",
    ]
    assert hasattr(django_eventstream.eventstream, "redis_client")


def test_ready_replaced_the_grip_publish_as_no_proxy_is_configured() -> None:
    assert django_eventstream.eventstream.publish_event is events._no_grip_publish


def test_the_listener_manager_queues_to_listeners_under_its_lock() -> None:
    manager = views.get_listener_manager()
    assert manager is views.listener_manager
    assert hasattr(manager.lock, "acquire")
    assert hasattr(manager.lock, "release")
    for method in ("add_listener", "remove_listener", "add_to_queues"):
        assert callable(getattr(manager, method)), method
    assert _parameters(manager.add_to_queues) == ["channel", "event"]


def test_a_listener_has_the_fields_the_stream_loop_reads_and_clears() -> None:
    async def build() -> views.Listener:
        return views.Listener()

    listener = asyncio.run(build())
    assert listener.channel_items == {}
    assert listener.overflow is False
    assert isinstance(listener.aevent, asyncio.Event)
    assert isinstance(listener.channels, set)
    assert hasattr(listener, "user_id")
    assert callable(listener.wake_threadsafe)


def test_a_full_listener_queue_sets_overflow_instead_of_queueing() -> None:
    class Quiet(views.Listener):
        def wake_threadsafe(self) -> None:
            """No loop to wake: the test reads the queue itself."""

    manager = views.ListenerManager()
    listener = Quiet()
    listener.channels = {"c"}
    manager.add_listener(listener)
    for i in range(views.MAX_PENDING + 1):
        manager.add_to_queues("c", event.Event("c", "t", "{}", id=i + 1))
    assert [e.id for e in listener.channel_items["c"]] == list(range(1, views.MAX_PENDING + 1))
    assert listener.overflow is True
    manager.remove_listener(listener)
    assert "c" not in manager.listeners_by_channel


def test_storage_base_and_event_does_not_exist_keep_their_shapes() -> None:
    base = storage.StorageBase
    assert _parameters(base.append_event) == ["self", "channel", "event_type", "data"]
    assert _parameters(base.get_events) == ["self", "channel", "last_id", "limit"]
    assert _parameters(base.get_current_id) == ["self", "channel"]
    assert storage.EventDoesNotExist("gone", 7).current_id == 7
    stored = event.Event("c", "t", "{}", id=3)
    assert (stored.channel, stored.type, stored.data, stored.id) == ("c", "t", "{}", 3)


def test_the_sse_helpers_encode_as_the_buffer_and_streams_expect() -> None:
    assert utils.make_id({"execution-a b": 4}) == "execution-a%20b:4"
    assert utils.sse_encode_event("t", '{"a":1}\n{"b":2}', event_id="c:1") == (
        'event: t\nid: c:1\ndata: {"a":1}\ndata: {"b":2}\n\n'
    )
    assert utils.sse_encode_event("", "x")[len("event: \n") :] == "data: x\n\n"
    assert (
        utils.sse_encode_event("r", {"k": [1]}, json_encode=True)
        == 'event: r\ndata: {"k": [1]}\n\n'
    )
    headers: dict[str, str] = {}
    utils.add_default_headers(headers, request=RequestFactory().get("/"))
    assert headers["Cache-Control"] == "no-cache"
    assert isinstance(utils.get_storage(), storage.StorageBase)


def test_last_event_ids_parse_into_channels_and_ids() -> None:
    """The streams read Last-Event-ID with the library's parser (and refuse what it refuses)."""
    assert utils.parse_last_event_id("executions:12") == {"executions": "12"}
    assert utils.parse_last_event_id("a:1,b:2") == {"a": "1", "b": "2"}
    with pytest.raises(ValueError, match="unpack"):
        utils.parse_last_event_id("no-colon")
