"""Shared by the reproductions: a bare Django with django-eventstream and an in-memory storage.

Importing it configures Django (no GRIP proxy, no Redis, this module's storage), which
django-eventstream needs before it can be imported. Only Django and django-eventstream 5.3.x
are needed: run a script from this directory, e.g. `../../.venv/bin/python <script>.py`.
"""

import threading
from importlib.metadata import version
from typing import Any

import django
from django.conf import settings

settings.configure(
    DEBUG=False,
    SECRET_KEY="reproduction",
    ALLOWED_HOSTS=["testserver"],
    INSTALLED_APPS=["django_eventstream"],
    EVENTSTREAM_STORAGE_CLASS="_setup.MemoryStorage",
)
django.setup()

from django_eventstream.event import Event  # noqa: E402
from django_eventstream.storage import EventDoesNotExist, StorageBase  # noqa: E402

LIBRARY = version("django-eventstream")


class MemoryStorage(StorageBase):
    """The smallest correct storage: numbers events per channel under a lock, replays them."""

    lock = threading.Lock()
    events: dict[str, list[Event]] = {}

    def append_event(self, channel: str, event_type: str, data: Any) -> Event:
        with self.lock:
            stored = self.events.setdefault(channel, [])
            event = Event(channel, event_type, data, id=len(stored) + 1)
            stored.append(event)
            return event

    def get_events(self, channel: str, last_id: int, limit: int = 100) -> list[Event]:
        with self.lock:
            stored = self.events.get(channel, [])
            if last_id > len(stored):
                raise EventDoesNotExist(f"No such event {last_id}", len(stored))
            return stored[last_id : last_id + limit]

    def get_current_id(self, channel: str) -> int:
        with self.lock:
            return len(self.events.get(channel, []))
