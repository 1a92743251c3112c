"""The two SSE streams, fed from django-eventstream's listener manager and storage.

GET /workflow/executions-stream opens with executions.initial (one page + stats) and then carries
every event. Its default view is c4c's: each executions.update carries the newest page as list
rows (`pages`), as c4c's UI expects; `?view=delta` keeps each update as sent, only the execution
that changed, which is all our dashboard needs. The replay position is taken BEFORE the snapshot
is read, so nothing that happens in between is missed (at worst it is seen twice). The snapshot
is built once and shared by every client that connects before the list channel moves on (or
SNAPSHOT_MAX_AGE_S passes, for writes that send no event, such as an admin delete): a thousand
clients connecting at once cost one query, not a thousand. GET /workflow/executions/<id>/stream
replays the execution's buffered events from its first one, so a client that opens it mid-run (or
before the run, with a caller-chosen id) still sees it whole; `?from=now` starts at its end
instead, for a client that already holds the run as it is (our detail page, which reads it when
the stream opens: replayed, older events would take its graph and counts back before moving them
forward again). A Last-Event-ID (or ?lastEventId=) resumes either stream.

Our loop replaces django-eventstream's `stream()`, which re-reads the storage from a stale
position after a queue conflict or overflow (so clients got events twice), hops to a thread for
every read and encodes each event once per client. Here a stream sends each event id once and
in order (queued ids it has sent are skipped; a gap, from an overflowed queue or Redis delivering
out of order, is filled from the storage), writes the frame each event was encoded to once
(`event_buffer.sse_frame`), and is woken together with the other listeners of its event loop by
one loop callback per batch of events instead of one each.
"""

import asyncio
import threading
import time
import weakref
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import cast
from urllib.parse import unquote

from asgiref.sync import sync_to_async
from django.http import HttpRequest, JsonResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.views.decorators.http import require_GET
from django_eventstream.event import Event
from django_eventstream.storage import EventDoesNotExist
from django_eventstream.utils import (
    add_default_headers,
    get_storage,
    make_id,
    parse_last_event_id,
    sse_encode_event,
)
from django_eventstream.views import Listener, get_listener_manager

from .. import metrics
from ..models import Execution, ExecutionCounter
from ..serializers import execution_summary, showable_json
from . import pages
from .buffer import sse_frame
from .events import LIST_CHANNEL, encode, execution_channel, now_ms
from .payloads import ExecutionsInitial, ExecutionSummary, StreamConnected

SNAPSHOT_SIZE = pages.PAGE_SIZE
SNAPSHOT_MAX_AGE_S = 1.0
KEEP_ALIVE_S = 20.0
READ_PAGE = 100
# django-eventstream's opening: padding that makes old proxies flush, then stream-open.
OPENING = b":" + b" " * 2048 + b"\n\nevent: stream-open\ndata:\n\n"
KEEP_ALIVE = b"event: keep-alive\ndata:\n\n"


@dataclass(frozen=True)
class _Snapshot:
    list_id: int
    built_at: float
    frame: bytes


class _SnapshotCache:
    """executions.initial for clients connecting while the list stays as it was. Each fresh read
    also seeds this process's page keeper (a keeper not seeded yet never takes a cached frame)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latest: _Snapshot | None = None

    def frame(self) -> bytes:
        with self.lock:
            # Read before the page: the snapshot is at least as new as the position it is keyed by.
            list_id = get_storage().get_current_id(LIST_CHANNEL)
            latest = self.latest
            kept = pages.keeper()
            if (
                latest is not None
                and latest.list_id == list_id
                and time.monotonic() - latest.built_at < SNAPSHOT_MAX_AGE_S
                and (kept is None or kept.seeded)
            ):
                return latest.frame
            initial = _read_snapshot()
            if kept is not None:
                kept.seed(list_id, initial["executions"], initial["stats"])
            self.latest = _Snapshot(list_id, time.monotonic(), _encode_snapshot(initial))
            return self.latest.frame


def _read_snapshot() -> ExecutionsInitial:
    """The newest page (each execution's summary) and the stats: two queries and the nodes'."""
    page = Execution.objects.page(limit=SNAPSHOT_SIZE, shape="summary")
    return {
        "executions": [
            cast(ExecutionSummary, execution_summary(row.execution, row.nodes)) for row in page.rows
        ],
        "stats": ExecutionCounter.objects.stats(),
        "timestamp": now_ms(),
    }


def _encode_snapshot(initial: ExecutionsInitial) -> bytes:
    """executions.initial, each row that cannot be shown as its marker, so one bad stored row
    never stops the stream from opening."""
    data = showable_json(initial, "executions").decode()
    return sse_encode_event("executions.initial", data).encode()


def _build_snapshot() -> bytes:
    return _encode_snapshot(_read_snapshot())


snapshots = _SnapshotCache()


class _LoopFanout:
    """The listeners of one event loop: one thread-safe callback wakes every listener an event
    reached, one timer sends every stream its keep-alive."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.lock = threading.Lock()
        self.woken: list[_Listener] = []
        self.listeners: set[_Listener] = set()
        self.timer: asyncio.TimerHandle | None = None

    def wake(self, listener: "_Listener") -> None:
        with self.lock:
            self.woken.append(listener)
            first = len(self.woken) == 1
        if first:
            self.loop.call_soon_threadsafe(self._wake_all)

    def _wake_all(self) -> None:
        with self.lock:
            woken, self.woken = self.woken, []
        for listener in woken:
            listener.aevent.set()

    def add(self, listener: "_Listener") -> None:
        self.listeners.add(listener)
        if self.timer is None:
            self.timer = self.loop.call_later(KEEP_ALIVE_S, self._keep_alive)

    def remove(self, listener: "_Listener") -> None:
        self.listeners.discard(listener)
        if not self.listeners and self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _keep_alive(self) -> None:
        for listener in self.listeners:
            listener.keep_alive = True
            listener.aevent.set()
        self.timer = self.loop.call_later(KEEP_ALIVE_S, self._keep_alive)


_fanouts: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopFanout]" = (
    weakref.WeakKeyDictionary()
)


class _Listener(Listener):
    """A django-eventstream listener (it queues to `channel_items`) woken by its loop's fan-out."""

    def __init__(self, channel: str) -> None:
        super().__init__()
        self.user_id = "anonymous"
        self.channels = {channel}
        self.keep_alive = False
        # When the first event not yet written reached this process: its delivery delay.
        self.woken_at: float | None = None
        self.loop = asyncio.get_running_loop()
        fanout = _fanouts.get(self.loop)
        if fanout is None:
            fanout = _fanouts[self.loop] = _LoopFanout(self.loop)
        self.fanout = fanout

    def wake_threadsafe(self) -> None:
        self.woken_at = self.woken_at or time.monotonic()
        self.fanout.wake(self)


# How a stream writes an event: as sent, or (the list stream's c4c view) with the page.
Framing = Callable[[Event], bytes]


async def _stored_since(channel: str, last_id: int, frame: Framing) -> tuple[list[bytes], int]:
    """Frames of the stored events after last_id (or a stream-reset), and the new position."""
    storage = get_storage()
    blocking = getattr(storage, "reads_block", True)
    frames: list[bytes] = []
    while True:
        try:
            if blocking:
                read = sync_to_async(storage.get_events, thread_sensitive=False)
                events = await read(channel, last_id, limit=READ_PAGE)
            else:
                events = storage.get_events(channel, last_id, limit=READ_PAGE)
        except EventDoesNotExist as exc:
            last_id = int(exc.current_id)
            reset = sse_encode_event(
                "stream-reset",
                {"channels": [channel]},
                event_id=make_id({channel: last_id}),
                json_encode=True,
            )
            frames.append(reset.encode())
            return frames, last_id
        for event in events:
            if int(event.id) > last_id:
                frames.append(frame(event))
                last_id = int(event.id)
        if len(events) < READ_PAGE:
            return frames, last_id


async def _events(
    channel: str,
    last_id: int,
    preamble: bytes,
    frame: Framing = sse_frame,
    closed: Callable[[], None] | None = None,
) -> AsyncIterator[bytes]:
    listener = _Listener(channel)
    manager = get_listener_manager()
    # Listening starts before the catch-up read: an event sent in between is both read and
    # queued, and the id check below sends it once.
    manager.add_listener(listener)
    listener.fanout.add(listener)
    clients = metrics.sse_clients(list_stream=channel == LIST_CHANNEL)
    clients.inc()
    try:
        frames, last_id = await _stored_since(channel, last_id, frame)
        # Shared objects go out as they are: joining them would copy the snapshot per client.
        yield preamble
        yield b"".join([OPENING, *frames]) if frames else OPENING
        while True:
            await listener.aevent.wait()
            with manager.lock:
                queued = listener.channel_items.pop(channel, [])
                gap = listener.overflow
                listener.overflow = False
                listener.aevent.clear()
                woken_at, listener.woken_at = listener.woken_at, None
            frames = []
            for event in queued:
                event_id = int(event.id)
                if event_id <= last_id:
                    continue
                if event_id != last_id + 1:
                    gap = True
                    break
                frames.append(frame(event))
                last_id = event_id
            if gap:
                missed, last_id = await _stored_since(channel, last_id, frame)
                frames.extend(missed)
            if listener.keep_alive:
                listener.keep_alive = False
                frames.append(KEEP_ALIVE)
            if frames:
                yield frames[0] if len(frames) == 1 else b"".join(frames)
                metrics.event_delivered(woken_at)
    finally:
        clients.dec()
        listener.fanout.remove(listener)
        manager.remove_listener(listener)
        if closed is not None:
            closed()


class BadPosition(ValueError):
    """A Last-Event-ID (or lastEventId) that names no position: the request is refused with it."""


def _position(request: HttpRequest, channel: str, *, from_start: bool) -> int:
    """Where the stream starts: the client's Last-Event-ID for this channel (the header, else the
    last non-empty ?lastEventId=, as django-eventstream reads them), else the start of the channel
    (from_start) or its current end.

    Only the id is read. django-eventstream's own request parsing also takes `es-meta` (a channel
    list signed for GRIP proxies) and `recover` (a GRIP proxy's resume): neither is ours (each
    stream has its one channel, and no proxy stands in front), so both are ignored, as any other
    query parameter is; read by that parsing, a made-up value of either answered 500.
    """
    given = request.headers.get("Last-Event-ID") or next(
        (value for value in reversed(request.GET.getlist("lastEventId")) if value), ""
    )
    try:
        ids = (
            {unquote(name): id for name, id in parse_last_event_id(given).items()} if given else {}
        )
    except ValueError:
        raise BadPosition(f"Last-Event-ID {given!r} is not channel:id[,channel:id...]") from None
    position = ids.get(channel)
    if position is None:
        return 0 if from_start else get_storage().get_current_id(channel)
    try:
        return int(position)
    except ValueError:
        raise BadPosition(f"Last-Event-ID {position!r} for {channel} is not a number") from None


def _refused(message: str) -> JsonResponse:
    return JsonResponse({"error": f"Invalid request: {message}"}, status=400)


def _response(request: HttpRequest, body: AsyncIterator[bytes]) -> StreamingHttpResponse:
    response = StreamingHttpResponse(body, content_type="text/event-stream")
    add_default_headers(response, request=request)
    return response


# The list stream's views (?view=): c4c's, the default, and our dashboard's.
LIST_VIEWS: dict[str, Framing] = {"c4c": pages.page_frame, "delta": sse_frame}


@require_GET
async def executions_stream(request: HttpRequest) -> HttpResponseBase:
    view = request.GET.get("view", "c4c")
    if view not in LIST_VIEWS:
        return _refused(f"view must be one of {', '.join(LIST_VIEWS)}, not {view!r}")
    try:
        position = _position(request, LIST_CHANNEL, from_start=False)
    except BadPosition as exc:
        return _refused(str(exc))
    closed = None
    if view == "c4c":
        # Listening starts before the snapshot's read, which seeds the page.
        pages.keep()
        closed = pages.release
    try:
        preamble = await sync_to_async(snapshots.frame, thread_sensitive=False)()
    except BaseException:
        if closed is not None:
            closed()
        raise
    events = _events(LIST_CHANNEL, position, preamble, LIST_VIEWS[view], closed)
    return _response(request, events)


# Where an execution's stream starts (?from=) when no Last-Event-ID says: its first event, or
# its end.
EXECUTION_STARTS = ("start", "now")


@require_GET
async def execution_stream(request: HttpRequest, execution_id: str) -> HttpResponseBase:
    channel = execution_channel(execution_id)
    start = request.GET.get("from", "start")
    if start not in EXECUTION_STARTS:
        return _refused(f"from must be one of {', '.join(EXECUTION_STARTS)}, not {start!r}")
    try:
        position = _position(request, channel, from_start=start == "start")
    except BadPosition as exc:
        return _refused(str(exc))
    connected: StreamConnected = {"executionId": execution_id, "timestamp": now_ms()}
    preamble = sse_encode_event("workflow.stream.connected", encode(connected)).encode()
    return _response(request, _events(channel, position, preamble))
