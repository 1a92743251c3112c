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

Each buffered event also carries its SSE frame (`sse_frame`), encoded once in the sending thread,
so a thousand listeners of a channel write the same bytes instead of encoding them a thousand
times on the event loop.
"""

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


@lru_cache(maxsize=4096)
def _id_prefix(channel: str) -> str:
    """make_id's `<quoted channel>:` for one channel: URL-quoting the name on every event cost
    ~3 % of a node, and a run sends all its events on the same two channels."""
    return make_id({channel: ""})


# The data lines of the last event framed, by identity of its payload: each event is sent on
# two channels with the same payload object, and only the `id:` line differs between its frames.
# A 1,000-node workflow.result payload is ~870 KB: framing it twice cost ~5 ms, once ~0.5 ms.
_last_data: tuple[Any, bytes] = (None, b"")


def data_lines(data: str) -> bytes:
    """The `data:` lines (and the blank line) that end a frame carrying `data`."""
    return sse_encode_event("", data)[len("event: \n") :].encode()


def _data_lines(data: Any) -> bytes:
    global _last_data
    last, lines = _last_data
    if last is not data:
        lines = data_lines(data)
        _last_data = (data, lines)
    return lines


def frame_head(event: Event) -> bytes:
    """The `event:` and `id:` lines of the event's frame (its id names only its own channel)."""
    event_id = f"{_id_prefix(event.channel)}{event.id}" if event.id is not None else None
    return sse_encode_event(event.type, "", event_id=event_id)[: -len("data: \n\n")].encode()


def sse_frame(event: Event) -> bytes:
    """The event's frame on a one-channel stream, as it was sent.

    Kept on the event, so it is encoded once whoever asks first: the buffer for its own events,
    the stream for events django-eventstream's Redis subscriber builds.
    """
    cached = vars(event).get("frame")
    if cached is None:
        cached = frame_head(event) + _data_lines(event.data)
        vars(event)["frame"] = cached
    return cached


def _cost(event: Event, frame: bytes) -> int:
    return sys.getsizeof(event.data) + len(frame) + EVENT_OVERHEAD_BYTES


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

    def append(self, channel: str, event_type: str, data: Any) -> Event:
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
            event = Event(channel, event_type, data, id=state.last_id)
            cost = _cost(event, sse_frame(event))
            state.events.append((event, cost))
            self.bytes += cost
            self.filled[channel] = state
            self.filled.move_to_end(channel)
            excess = len(state.events) - app_settings.C4C_REPLAY_EVENTS
            if excess > 0:
                self._drop(channel, state, excess)
            self._fit_bytes(state)
        return event

    def _drop(self, name: str, state: _Channel, count: int) -> None:
        for _ in range(count):
            self.bytes -= state.events.popleft()[1]
        if not state.events:
            self.filled.pop(name, None)

    def _fit_bytes(self, newest: _Channel) -> None:
        """Drop the oldest events of the least recently used channels; keep the newest event."""
        while self.bytes > app_settings.C4C_REPLAY_BYTES and self.filled:
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

    def append_event(self, channel: str, event_type: str, data: Any) -> Event:
        return _buffer.append(channel, event_type, data)

    def get_events(self, channel: str, last_id: int, limit: int = 100) -> list[Event]:
        return _buffer.since(channel, last_id, limit)

    def get_current_id(self, channel: str) -> int:
        return _buffer.current(channel)
