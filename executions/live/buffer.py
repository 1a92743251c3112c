"""A bounded in-process replay buffer for django-eventstream (its storage interface).

django-eventstream's database storage costs several writes per event; at hundreds of events a
second that would compete with the executions themselves for SQLite's single writer. Replay only
has to cover a reconnect, so the buffer is bounded three ways: each channel keeps its last
C4C_REPLAY_EVENTS events, the least recently used channels are forgotten past
C4C_REPLAY_CHANNELS, and all channels together hold at most C4C_REPLAY_BYTES
(oldest events of the least recently used channels go first). A count alone let a few long runs
with big payloads hold hundreds of MiB. A client asking for events older than the buffer gets
django-eventstream's `stream-reset`; the list stream also sends a fresh snapshot on every connect,
so the final state is always reached.

An event is paid for only when something reads it. The runtime hands over its payload object
(`Payload`) and the buffer keeps that; its JSON text and `data:` lines are made the first time a
reader asks (a stream of that channel, a replay, Redis or the supervisor's hub), once for every
channel and reader, and its frame (`sse_frame`) once per channel. A channel with a listener has
its frames made in the sending thread (events.py), so a thousand listeners write the same bytes and
the event loop encodes nothing. An event appended encoded (its channel has a listener, or it came
as text) is charged its real size; one not encoded, the mean encoded size of its event type seen
so far in this process (`_Sizes`), as measuring it would cost the encoding it saves. So for events
nobody has read the byte bound holds on average, not event by event: stored values are bounded
(C4C_MAX_PAYLOAD_BYTES), and each event appended while a client listens keeps the mean current.
"""

import json
import sys
import threading
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import islice
from typing import Any

from django_eventstream.event import Event
from django_eventstream.storage import EventDoesNotExist, StorageBase
from django_eventstream.utils import make_id, sse_encode_event

from ..conf import app_settings

# The Event object, its attribute dict and the frame's bytes header, beyond the two payload copies.
EVENT_OVERHEAD_BYTES = 400
# What an event not encoded yet is charged before any event of its type has been encoded here.
DEFAULT_EVENT_BYTES = 1024

# One encoder for every event: json.dumps with options builds a new encoder per call.
_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def encode(payload: Any) -> str:
    """Compact JSON of a payload built from JSON-native values."""
    return _encode(payload)


@lru_cache(maxsize=4096)
def _id_prefix(channel: str) -> str:
    """make_id's `<quoted channel>:` for one channel: URL-quoting the name on every event cost
    ~3 % of a node, and a run sends all its events on the same two channels."""
    return make_id({channel: ""})


def data_lines(data: str) -> bytes:
    """The `data:` lines (and the blank line) that end a frame carrying `data`."""
    return sse_encode_event("", data)[len("event: \n") :].encode()


class Payload:
    """An event's data as the runtime built it, encoded on first read, once for every reader.

    `value` is JSON-native and never changed after it is handed over (the store replaces a row's
    values, it does not edit them). Two threads reading at once may both encode it, to the same
    text: cheaper than a lock on every event. Once encoded, the object is let go and only the
    text is kept (read `value` before `_text`: the text is set before the value is cleared).
    """

    __slots__ = ("_lines", "_text", "value")

    def __init__(self, value: Any = None, *, text: str | None = None) -> None:
        self.value = value
        self._text = text
        self._lines: bytes | None = None

    @property
    def encoded(self) -> bool:
        return self._text is not None

    @property
    def text(self) -> str:
        value = self.value
        text = self._text
        if text is None:
            text = self._text = encode(value)
            self.value = None
        return text

    def lines(self) -> bytes:
        lines = self._lines
        if lines is None:
            lines = self._lines = data_lines(self.text)
        return lines

    def loaded(self) -> Any:
        """The payload as an object: the one handed over while it is kept, else parsed."""
        value = self.value
        return json.loads(self._text) if value is None and self._text is not None else value


class BufferedEvent(Event):
    """A django-eventstream Event whose `data` is its payload's text, made when first read."""

    def __init__(self, channel: str, event_type: str, payload: Payload, event_id: int) -> None:
        # Not the dataclass's __init__: it would set `data`, which is read from the payload.
        self.channel = channel
        self.type = event_type
        self.id = event_id
        self.payload = payload
        self.frame: bytes | None = None

    @property
    def data(self) -> str:
        return self.payload.text


def frame_head(event: Event) -> bytes:
    """The `event:` and `id:` lines of the event's frame (its id names only its own channel)."""
    event_id = f"{_id_prefix(event.channel)}{event.id}" if event.id is not None else None
    return sse_encode_event(event.type, "", event_id=event_id)[: -len("data: \n\n")].encode()


def sse_frame(event: Event) -> bytes:
    """The event's frame on a one-channel stream, made once whoever asks first.

    A buffered event's `data:` lines are its payload's, shared with its other channel's event;
    an event django-eventstream's Redis subscriber (or the hub's link) builds keeps its frame too.
    """
    if isinstance(event, BufferedEvent):
        frame = event.frame
        if frame is None:
            frame = event.frame = frame_head(event) + event.payload.lines()
        return frame
    cached: bytes | None = vars(event).get("frame")
    if cached is None:
        cached = vars(event)["frame"] = frame_head(event) + data_lines(event.data)
    return cached


class _Sizes:
    """The mean encoded size per event type, from the events appended already encoded."""

    def __init__(self) -> None:
        self.mean: dict[str, float] = {}

    def cost(self, event_type: str, payload: Payload) -> int:
        text = payload._text  # `encoded` and `text` in place: ~2 calls an event
        if text is not None:
            size = sys.getsizeof(text)
            known = self.mean.get(event_type)
            # A moving mean over the last ~32 events of the type.
            self.mean[event_type] = size if known is None else known + (size - known) / 32
            # The text, and the frame's copy of it once read.
            return 2 * size + EVENT_OVERHEAD_BYTES
        return 2 * int(self.mean.get(event_type, DEFAULT_EVENT_BYTES)) + EVENT_OVERHEAD_BYTES


@dataclass
class _Channel:
    last_id: int = 0
    events: deque[tuple[Event, int]] = field(default_factory=deque)


class _Buffer:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.channels: OrderedDict[str, _Channel] = OrderedDict()
        # The channels that still hold events, least recently appended to first.
        self.filled: OrderedDict[str, _Channel] = OrderedDict()
        self.bytes = 0
        self.sizes = _Sizes()

    def append(self, channel: str, event_type: str, data: Any) -> BufferedEvent:
        """Keep the event (`data`: a Payload from events.py, or the library's text, taken as
        encoded) within the replay bounds."""
        payload = data if isinstance(data, Payload) else Payload(text=data)
        max_events, max_bytes = app_settings.C4C_REPLAY_EVENTS, app_settings.C4C_REPLAY_BYTES
        with self.lock:
            state = self.channels.get(channel)
            if state is None:
                state = self.channels[channel] = _Channel()
                while len(self.channels) > app_settings.C4C_REPLAY_CHANNELS:
                    name, dropped = self.channels.popitem(last=False)
                    self._drop(name, dropped, len(dropped.events))
            else:
                self.channels.move_to_end(channel)
            state.last_id += 1
            event = BufferedEvent(channel, event_type, payload, state.last_id)
            cost = self.sizes.cost(event_type, payload)
            state.events.append((event, cost))
            self.bytes += cost
            self.filled[channel] = state
            self.filled.move_to_end(channel)
            # One in, one out once a channel is full (the list's, always): no call for it.
            events = state.events
            while len(events) > max_events:
                self.bytes -= events.popleft()[1]
            if self.bytes > max_bytes:
                self._fit_bytes(state, max_bytes)
        return event

    def _drop(self, name: str, state: _Channel, count: int) -> None:
        for _ in range(count):
            self.bytes -= state.events.popleft()[1]
        if not state.events:
            self.filled.pop(name, None)

    def _fit_bytes(self, newest: _Channel, max_bytes: int) -> None:
        """Drop the oldest events of the least recently used channels; keep the newest event."""
        while self.bytes > max_bytes and self.filled:
            name, state = next(iter(self.filled.items()))
            if state is newest and len(state.events) == 1:
                return
            self._drop(name, state, 1)

    def since(self, channel: str, last_id: int, limit: int) -> list[Event]:
        with self.lock:
            state = self.channels.get(channel)
            current = state.last_id if state else 0
            if last_id > current:
                # An id from before a restart: the buffer cannot say what came after it.
                raise EventDoesNotExist(f"No such event {last_id}", current)
            if state is None or last_id == current:
                return []
            first_kept = state.events[0][0].id if state.events else current + 1
            if last_id + 1 < first_kept:
                raise EventDoesNotExist(f"Event {last_id + 1} is no longer buffered", current)
            # Ids in a channel are consecutive, so the position of last_id + 1 is known.
            start = last_id + 1 - first_kept
            return [event for event, _ in islice(state.events, start, start + limit)]

    def current(self, channel: str) -> int:
        with self.lock:
            state = self.channels.get(channel)
            return state.last_id if state else 0


_buffer = _Buffer()


class MemoryEventStorage(StorageBase):
    """django-eventstream keeps one storage object per thread; they all share one buffer.

    Reads touch only memory, so a stream may call them on the event loop (`reads_block` False).
    """

    reads_block = False

    def append_event(self, channel: str, event_type: str, data: Any) -> BufferedEvent:
        """`data` is a Payload from events.py, or the library's text."""
        return _buffer.append(channel, event_type, data)

    def get_events(self, channel: str, last_id: int, limit: int = 100) -> list[Event]:
        return _buffer.since(channel, last_id, limit)

    def get_current_id(self, channel: str) -> int:
        return _buffer.current(channel)
