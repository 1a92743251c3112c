# ruff: noqa: T201 - a reproduction prints what it shows
"""views.stream() re-reads storage from a stale position after a queue conflict.

After its first read from storage, stream() checks whether events were queued to the listener
meanwhile; if so it tosses them and reads the storage again ("conflict"). But it reads again
from `event_request.channel_last_ids`, which still holds the position the client sent, not
the position of the events it has just written. So:

1. a client resuming with Last-Event-ID gets every event since that id twice;
2. a client connecting without one (it starts at the channel's current id) loses the events
   that arrived during the first read: the re-read starts at the new current id.

An event sent between the first read and the conflict check triggers it; here it is sent at
exactly that point by stepping the stream's generator, as a busy channel does by chance.
"""

import asyncio

from _setup import LIBRARY  # configures Django, which django-eventstream needs first

# isort: split
from django.test import RequestFactory
from django_eventstream import send_event
from django_eventstream.eventrequest import EventRequest
from django_eventstream.views import Listener, stream


def ids_in(body: str) -> list[str]:
    return [line.removeprefix("id: ") for line in body.splitlines() if line.startswith("id: ")]


async def written(channel: str, headers: dict[str, str]) -> list[str]:
    """The event ids stream() writes when one event arrives during its first storage read."""
    request = RequestFactory().get("/events", headers=headers)
    event_request = EventRequest(request, view_kwargs={"channels": [channel]})
    listener = Listener()
    listener.channels = {channel}
    body = stream(event_request, listener)
    sent = ids_in(await anext(body))  # the first read, written; now the conflict check
    send_event(channel, "message", {"n": "during the read"})
    try:
        sent += ids_in(await asyncio.wait_for(anext(body), timeout=1))
        sent += ids_in(await asyncio.wait_for(anext(body), timeout=1))
    except TimeoutError:
        pass  # the stream is waiting for new events: nothing more is coming
    await body.aclose()
    return sent


async def main() -> None:
    print(f"django-eventstream {LIBRARY}")
    for n in range(3):
        send_event("resume", "message", {"n": n})
    resumed = await written("resume", {"Last-Event-ID": "resume:1"})
    print(f"resume from id 1; stored 2, 3, then 4 arrives; written: {resumed}")
    if len(resumed) != len(set(resumed)):
        print("BUG: events written twice after the conflict re-read")

    for n in range(3):
        send_event("fresh", "message", {"n": n})
    fresh = await written("fresh", {})
    print(f"connect at id 3; then 4 arrives; written: {fresh}")
    if "fresh:4" not in fresh:
        print("BUG: the event that caused the conflict was dropped")


asyncio.run(main())
