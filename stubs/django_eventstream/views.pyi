import asyncio
import threading
from collections.abc import AsyncGenerator

from .event import Event
from .eventrequest import EventRequest

MAX_PENDING: int

class Listener:
    loop: asyncio.AbstractEventLoop | None
    aevent: asyncio.Event
    user_id: str
    channels: set[str]
    channel_items: dict[str, list[Event]]
    overflow: bool
    error: str | dict[str, object]
    def __init__(self) -> None: ...
    def assign_loop(self) -> None: ...
    def wake_threadsafe(self) -> None: ...

class ListenerManager:
    lock: threading.Lock
    listeners_by_channel: dict[str, set[Listener]]
    def __init__(self) -> None: ...
    def add_listener(self, listener: Listener) -> None: ...
    def remove_listener(self, listener: Listener) -> None: ...
    def add_to_queues(self, channel: str, event: Event) -> None: ...

listener_manager: ListenerManager

def get_listener_manager() -> ListenerManager: ...
def stream(event_request: EventRequest, listener: Listener) -> AsyncGenerator[str]: ...
