# ruff: noqa: T201 - a reproduction prints what it shows
"""send_event publishes every event to a GRIP proxy even when none is configured.

With a storage, it first escapes the whole payload one character at a time for the proxy's
`build-id` filter (utils.build_id_escape), then hands it to django_grip, which has no proxy to
send it to. Expected: no GRIP_URL / GRIP_PROXIES, no publish work. Printed: the characters
escaped and the share of send_event's time spent on the proxy that is not there.
"""

import time

from _setup import LIBRARY  # configures Django, which django-eventstream needs first

# isort: split
import django_eventstream.eventstream
import django_eventstream.utils
from django.conf import settings
from django_eventstream import send_event

PAYLOAD = '{"result": "' + "x" * 1_000_000 + '"}'
escaped = 0
library_escape = django_eventstream.utils.build_id_escape


def counting_escape(text: str) -> str:
    global escaped
    escaped += len(text)
    return library_escape(text)


def seconds_per_send() -> float:
    started = time.perf_counter()
    for _ in range(5):
        send_event("run", "workflow.result", PAYLOAD, json_encode=False)
    return (time.perf_counter() - started) / 5


django_eventstream.utils.build_id_escape = counting_escape
with_publish = seconds_per_send()
library_publish = django_eventstream.eventstream.publish_event
django_eventstream.eventstream.publish_event = lambda *args, **kwargs: None
without_publish = seconds_per_send()
django_eventstream.eventstream.publish_event = library_publish

grip = {name: getattr(settings, name, None) for name in ("GRIP_URL", "GRIP_PROXIES")}
print(f"django-eventstream {LIBRARY}, GRIP settings: {grip}")
print(f"characters escaped for GRIP in 5 sends of a 1 MB payload: {escaped:,}")
print(
    f"send_event: {with_publish * 1000:.1f} ms; without the GRIP publish: "
    f"{without_publish * 1000:.2f} ms ({1 - without_publish / with_publish:.0%} of it wasted)"
)
if escaped:
    print("BUG: the payload was escaped and published for a GRIP proxy that is not configured")
