from dataclasses import dataclass
from typing import Any

@dataclass
class Event:
    channel: str
    type: str
    # What the sender passed: send_event's JSON text unless it was called with json_encode=False.
    data: Any
    # Declared Optional[int], but text when the event came through the Redis subscriber (None only
    # on a channel the channel manager calls unreliable): readers convert it with int().
    id: Any = None
