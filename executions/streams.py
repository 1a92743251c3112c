"""The two SSE streams, served by django-eventstream's streaming loop.

GET /workflow/executions-stream opens with executions.initial (one page + stats) and then carries
every event. The replay position is taken BEFORE the snapshot is read, so nothing that happens in
between is missed (at worst it is seen twice). GET /workflow/executions/<id>/stream replays the
execution's buffered events from its first one, so a page opened mid-run (or before the run, with
a caller-chosen id) still sees it whole. A Last-Event-ID (or ?lastEventId=) resumes either stream.
"""

from collections.abc import AsyncIterator

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, StreamingHttpResponse
from django.views.decorators.http import require_GET
from django_eventstream.eventrequest import EventRequest
from django_eventstream.utils import add_default_headers, get_storage, sse_encode_event
from django_eventstream.views import Listener, stream

from .events import (
    LIST_CHANNEL,
    ExecutionsInitial,
    StreamConnected,
    current_stats,
    encode,
    execution_channel,
    now_ms,
)
from .models import Execution
from .serializers import execution_summary

SNAPSHOT_SIZE = 50


def _snapshot() -> str:
    page = Execution.objects.for_list()[:SNAPSHOT_SIZE]
    initial: ExecutionsInitial = {
        "executions": [execution_summary(e) for e in page],
        "stats": current_stats(),
        "timestamp": now_ms(),
    }
    return sse_encode_event("executions.initial", encode(initial))


def _open(request: HttpRequest, channel: str, *, from_start: bool) -> EventRequest:
    event_request = EventRequest(request, view_kwargs={"channels": [channel]})
    if channel not in event_request.channel_last_ids:
        start = 0 if from_start else get_storage().get_current_id(channel)
        event_request.channel_last_ids[channel] = str(start)
    return event_request


def _response(event_request: EventRequest, preamble: str, request: HttpRequest) -> HttpResponse:
    listener = Listener()
    listener.user_id = "anonymous"
    listener.channels = event_request.channels

    async def body() -> AsyncIterator[str]:
        yield preamble
        async for chunk in stream(event_request, listener):
            yield chunk

    response = StreamingHttpResponse(body(), content_type="text/event-stream")
    add_default_headers(response, request=request)
    return response


@require_GET
async def executions_stream(request: HttpRequest) -> HttpResponse:
    try:
        event_request = _open(request, LIST_CHANNEL, from_start=False)
    except EventRequest.Error as exc:
        return HttpResponseBadRequest(f"Invalid request: {exc}.\n")
    preamble = await sync_to_async(_snapshot, thread_sensitive=False)()
    return _response(event_request, preamble, request)


@require_GET
async def execution_stream(request: HttpRequest, execution_id: str) -> HttpResponse:
    try:
        event_request = _open(request, execution_channel(execution_id), from_start=True)
    except EventRequest.Error as exc:
        return HttpResponseBadRequest(f"Invalid request: {exc}.\n")
    connected: StreamConnected = {"executionId": execution_id, "timestamp": now_ms()}
    preamble = sse_encode_event("workflow.stream.connected", encode(connected))
    return _response(event_request, preamble, request)
