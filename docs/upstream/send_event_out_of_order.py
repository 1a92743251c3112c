# ruff: noqa: T201 - a reproduction prints what it shows
"""send_event numbers an event and queues it to listeners in two steps under two locks.

storage.append_event gives the event its id (under the storage's own lock), then
listener_manager.add_to_queues hands it to local listeners (under the manager's lock). Between
the two, another thread can number AND queue its event, so a listener receives id 6 before 5.
views.stream() writes events in queue order and takes the last one's id as the position, so the
client's Last-Event-ID moves backwards (a reconnect replays events it has) and a reader that
expects ids in order sees a gap and a repeat.

Eight threads send to one channel through a storage that, like the library's own, still does
I/O after it has numbered an event (RedisStorage: INCR, then SETEX; DjangoModelStorage: save,
then trim), here a 0.1 ms pause. The listener's queue bound is lifted so that no event is
dropped and every id can be compared.
"""

import threading
import time
from itertools import pairwise
from typing import Any

from _setup import LIBRARY, MemoryStorage  # configures Django, which django-eventstream needs

# isort: split
import django_eventstream.views
from django.conf import settings
from django_eventstream import send_event
from django_eventstream.event import Event
from django_eventstream.views import Listener, get_listener_manager

THREADS = 8
EVENTS_PER_THREAD = 500
django_eventstream.views.MAX_PENDING = THREADS * EVENTS_PER_THREAD


class WritingStorage(MemoryStorage):
    def append_event(self, channel: str, event_type: str, data: Any) -> Event:
        event = super().append_event(channel, event_type, data)
        time.sleep(0.0001)  # the write that follows the numbering
        return event


settings.EVENTSTREAM_STORAGE_CLASS = f"{__name__}.WritingStorage"


class Recorder(Listener):
    """A listener whose queue is read here instead of by a stream."""

    def wake_threadsafe(self) -> None:
        """Nothing to wake."""


def sender() -> None:
    for _ in range(EVENTS_PER_THREAD):
        send_event("busy", "message", "{}", json_encode=False)


def main() -> None:
    listener = Recorder()
    listener.channels = {"busy"}
    manager = get_listener_manager()
    manager.add_listener(listener)
    threads = [threading.Thread(target=sender) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    received = [int(event.id) for event in listener.channel_items["busy"]]
    backwards = sum(1 for a, b in pairwise(received) if b < a)
    print(f"django-eventstream {LIBRARY}")
    print(f"{len(received)} events queued to the listener, {backwards} of them after a higher id")
    example = next((i for i in range(1, len(received)) if received[i] < received[i - 1]), None)
    if example is not None:
        print(f"e.g. received in this order: {received[max(example - 3, 0) : example + 3]}")
        print("BUG: one channel's events reach its listener out of id order")


main()
