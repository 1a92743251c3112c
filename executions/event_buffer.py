"""A bounded in-process replay buffer for django-eventstream (its storage interface).

django-eventstream's database storage costs several writes per event; at hundreds of events a
second that would compete with the executions themselves for SQLite's single writer. Replay only
has to cover a reconnect, so each channel keeps its last EVENTSTREAM_REPLAY_EVENTS events and the
least recently used channels are dropped past EVENTSTREAM_REPLAY_CHANNELS. A client asking for
events older than the buffer gets django-eventstream's `stream-reset`; the list stream also sends a
fresh snapshot on every connect, so the final state is always reached.
"""

import threading
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django_eventstream.event import Event
from django_eventstream.storage import EventDoesNotExist, StorageBase


@dataclass
class _Channel:
    last_id: int = 0
    events: deque[Event] = field(default_factory=deque)


class _Buffer:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.channels: OrderedDict[str, _Channel] = OrderedDict()

    def append(self, channel: str, event_type: str, data: Any) -> Event:
        with self.lock:
            state = self.channels.get(channel)
            if state is None:
                state = self.channels[channel] = _Channel()
                while len(self.channels) > settings.EVENTSTREAM_REPLAY_CHANNELS:
                    self.channels.popitem(last=False)
            else:
                self.channels.move_to_end(channel)
            state.last_id += 1
            event = Event(channel, event_type, data, id=state.last_id)
            state.events.append(event)
            while len(state.events) > settings.EVENTSTREAM_REPLAY_EVENTS:
                state.events.popleft()
            return event

    def since(self, channel: str, last_id: int, limit: int) -> list[Event]:
        with self.lock:
            state = self.channels.get(channel)
            current = state.last_id if state else 0
            if last_id > current:
                # An id from before a restart: the buffer cannot say what came after it.
                raise EventDoesNotExist(f"No such event {last_id}", current)
            if state is None or last_id == current:
                return []
            first_kept = state.events[0].id if state.events else current + 1
            if last_id + 1 < first_kept:
                raise EventDoesNotExist(f"Event {last_id + 1} is no longer buffered", current)
            return [e for e in state.events if e.id > last_id][:limit]

    def current(self, channel: str) -> int:
        with self.lock:
            state = self.channels.get(channel)
            return state.last_id if state else 0


_buffer = _Buffer()


class MemoryEventStorage(StorageBase):
    """django-eventstream keeps one storage object per thread; they all share one buffer."""

    def append_event(self, channel: str, event_type: str, data: Any) -> Event:
        return _buffer.append(channel, event_type, data)

    def get_events(self, channel: str, last_id: int, limit: int = 100) -> list[Event]:
        return _buffer.since(channel, last_id, limit)

    def get_current_id(self, channel: str) -> int:
        return _buffer.current(channel)
