"""Every SSE event leaves from here, after the transaction that recorded it commits.

Each event's shape is a TypedDict in `payloads` (c4c's camelCase names); `grep emit_` finds every
source, and every event passes through `_send` (the test suite checks each payload there against
its shape). Payloads are built as dicts from values the store already made JSON-native and handed
to the replay buffer as they are (`buffer.Payload`): encoded once, whatever the number of channels,
when something first reads them, and not at all when nothing does. This runs ~14 times per
execution, so it validates nothing it built itself. Channels: "executions" carries every event of
every execution for the list (but span.ended); "execution-<id>" carries one execution's events.

executions.update carries the execution's summary with the node details the caller passes: the
node that just changed for a node update, every node when the execution starts or ends. A list
row needs status and counts, and the detail page reads nodes from its own channel, so sending
every node on every node completion would only make a run of n nodes cost O(n^2). Updates of one
running execution are coalesced for C4C_UPDATE_COALESCE_MS (`_Updates`): those that come within
the window leave as one, the latest summary with every node the others carried, and what is held
leaves before the execution's workflow.completed/failed/waiting/result, so a client never sees an
end before the update that came before it.

`install()` (called from ExecutionsConfig.ready()) adapts django-eventstream once settings are
final: see docs/upstream/ for the library's bugs worked around here and in `streams`.
"""

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, Literal, NamedTuple, cast

import django_eventstream.eventstream
from django.conf import settings
from django.db import transaction
from django_eventstream import send_event
from django_eventstream.utils import get_storage
from django_eventstream.views import get_listener_manager

from workflows.definitions import NodeType

from .. import metrics
from ..conf import app_settings
from ..models import Execution, ExecutionCounter, ExecutionStatus, NodeExecution, NodeLog, Span
from ..serializers import execution_summary, iso_ms, node_log_line, span_json
from . import fanout
from .buffer import MemoryEventStorage, Payload, sse_frame
from .buffer import encode as encode
from .payloads import (
    ExecutionEvent,
    ExecutionSummary,
    ExecutionsUpdate,
    NodeCompleted,
    NodeLogLine,
    NodeStarted,
    NodeWaiting,
    SpanEnded,
    SpanJson,
    Stats,
    WorkflowFinished,
    WorkflowStarted,
    WorkflowWaiting,
)
from .payloads import (
    NodeLog as NodeLogEvent,
)

logger = logging.getLogger(__name__)

LIST_CHANNEL = "executions"


def execution_channel(execution_id: str) -> str:
    return f"execution-{execution_id}"


def now_ms() -> int:
    return int(time.time() * 1000)


def _grip_configured() -> bool:
    return bool(getattr(settings, "GRIP_URL", None) or getattr(settings, "GRIP_PROXIES", None))


def _no_grip_publish(*args: Any, **kwargs: Any) -> None:
    """Stands in for django-eventstream's GRIP publish when no GRIP proxy is configured."""


# send_event numbers an event in the storage and then queues it to the listeners, two steps under
# two locks: two pool threads sending at once could queue ids 6 then 5. One lock makes numbering
# and queueing a single step, so every listener sees each channel's ids in order.
_send_lock = threading.Lock()


Deliver = Callable[[str, str, Payload], None]


def _library_send(channel: str, event_type: str, payload: Payload) -> None:
    send_event(channel, event_type, payload.text, json_encode=False)


def _only_local_listeners() -> bool:
    """Whether events reach this process's listeners only: our in-process buffer, the default
    channel manager (every channel reliable), no Redis and no GRIP proxy."""
    return not (
        _grip_configured()
        or django_eventstream.eventstream.redis_client is not None
        or hasattr(settings, "EVENTSTREAM_CHANNELMANAGER_CLASS")
        or not isinstance(get_storage(), MemoryEventStorage)
    )


def _resolve_sender() -> Deliver:
    """send_event's own steps, with its storage and listener manager looked up once.

    send_event re-imports two modules and resolves its storage class by settings name on every
    call (~5 % of a node's cost). With our in-process buffer, the default channel manager (every
    channel reliable), no Redis and no GRIP proxy, what it does is exactly: number the event in
    the storage, queue it to the local listeners. Any other set-up keeps the library's path.

    A channel nobody listens to gets the payload object appended, nothing encoded; one with a
    listener (a stream, the page keeper) has the event encoded here, in the sending thread, so the
    event loop only writes bytes.
    """
    if not _only_local_listeners():
        return _library_send
    storage = get_storage()
    listeners = get_listener_manager()
    listened = listeners.listeners_by_channel

    def deliver(channel: str, event_type: str, payload: Payload) -> None:
        # Read without the manager's lock. Encoded before the append when listened to, so the
        # buffer charges its real size; checked again after it, as a stream listens before it
        # reads the buffer: one that began listening in between is queued the event, one that
        # began after reads it.
        if channel in listened:
            payload.lines()
        event = storage.append_event(channel, event_type, payload)
        if channel in listened:
            sse_frame(event)
            listeners.add_to_queues(channel, event)

    return deliver


# The library's path until install() has looked at the settings: slower, never wrong.
_deliver: Deliver = _library_send
# This process's listeners by channel when its events reach no one else; None when they may
# leave it (Redis, the supervisor's hub, a GRIP proxy): anyone may listen.
_local_listeners: Mapping[str, Any] | None = None


def _listened(channel: str) -> bool:
    """Whether anyone may be listening to `channel` now."""
    local = _local_listeners
    return local is None or channel in local


def install() -> None:
    """Adapt django-eventstream to this process's settings; ExecutionsConfig.ready() calls it.

    Without a GRIP proxy, send_event still escapes the whole payload character by character and
    publishes it to the proxy that is not there (40% of the server's CPU in a 1,000-node run;
    docs/upstream/README.md): that publish becomes a no-op. Local listeners and Redis fan-out
    are untouched. Then the fast sender is chosen once.
    """
    global _deliver, _local_listeners
    if not _grip_configured():
        django_eventstream.eventstream.publish_event = _no_grip_publish
    # A child of `c4c serve --workers N` hands its events to the supervisor's hub (fanout).
    publish = fanout.sender()
    _deliver = _resolve_sender() if publish is None else _as_text(publish)
    local = publish is None and _only_local_listeners()
    _local_listeners = get_listener_manager().listeners_by_channel if local else None


def _as_text(publish: Callable[[str, str, str], None]) -> Deliver:
    """A sender for another process: it gets the payload's text."""
    return lambda channel, event_type, payload: publish(channel, event_type, payload.text)


def _send(channels: tuple[str, ...], event_type: str, data: Payload) -> None:
    """The one door every event leaves by (tests/conftest.py checks each payload here).

    A broken fan-out (Redis down) must not fail the run that was already recorded.
    """
    with _send_lock:
        for channel in channels:
            try:
                _deliver(channel, event_type, data)
            except Exception:
                logger.exception("Could not send %s on %s", event_type, channel)


def _emit(event: ExecutionEvent) -> None:
    channels = (execution_channel(event["executionId"]), LIST_CHANNEL)
    transaction.on_commit(partial(_send, channels, event["type"], Payload(event)))


def _emit_end(event: ExecutionEvent, data: Payload | None = None) -> None:
    """An event that ends (or parks) a run: the update held for the execution leaves first."""
    execution_id = event["executionId"]
    channels = (execution_channel(execution_id), LIST_CHANNEL)
    payload = Payload(event) if data is None else data
    transaction.on_commit(partial(updates.before, execution_id, channels, event["type"], payload))


def _base(execution: Execution, event_type: str) -> ExecutionEvent:
    return {
        "type": event_type,
        "workflowId": execution.workflow_id,
        "executionId": execution.execution_id,
        "timestamp": now_ms(),
    }


def emit_workflow_started(execution: Execution) -> None:
    event: WorkflowStarted = {
        **_base(execution, "workflow.started"),
        "startTime": int(execution.started_at.timestamp() * 1000),
    }
    metrics.execution_started(execution)
    _emit(event)


def emit_node_started(execution: Execution, node: NodeExecution, *, node_index: int) -> None:
    event: NodeStarted = {
        **_base(execution, "node.started"),
        "nodeId": node.node_id,
        "nodeType": cast(NodeType, node.node_type),
        "nodeIndex": node_index,
    }
    _emit(event)


def emit_node_completed(
    execution: Execution, node: NodeExecution, *, node_index: int, next_node_id: str | None
) -> None:
    """node.completed for a completed or a failed node (c4c reports both under this name)."""
    # mypy wants every optional key in a display with a ** item; these are set below if present.
    event: NodeCompleted = {
        **_base(execution, "node.completed"),  # type: ignore[typeddict-item]
        "nodeId": node.node_id,
        "nodeIndex": node_index,
        "status": "failed" if node.error else "completed",
    }
    if next_node_id is not None:
        event["nextNodeId"] = next_node_id
    if node.output is not None:
        event["output"] = node.output
    if node.error is not None:
        event["error"] = node.error
    _emit(event)


def emit_node_waiting(execution: Execution, node: NodeExecution, *, node_index: int) -> None:
    event: NodeWaiting = {
        **_base(execution, "node.waiting"),
        "nodeId": node.node_id,
        "nodeIndex": node_index,
        "status": cast(Literal["sleeping", "waiting"], node.status),
        "wakeAt": iso_ms(node.wake_at) if node.wake_at else None,
        "waitingFor": node.waiting_for,
    }
    _emit(event)


def emit_workflow_waiting(execution: Execution) -> None:
    wake_at = execution.lease_expires_at
    event: WorkflowWaiting = {
        **_base(execution, "workflow.waiting"),
        "wakeAt": iso_ms(wake_at) if wake_at else None,
        "nodesExecuted": execution.nodes_executed,
    }
    _emit_end(event)


def emit_workflow_finished(execution: Execution) -> None:
    completed = execution.status == ExecutionStatus.COMPLETED
    name = "workflow.completed" if completed else "workflow.failed"
    # As in emit_node_completed: `error` is set below if there is one.
    event: WorkflowFinished = {
        **_base(execution, name),  # type: ignore[typeddict-item]
        "executionTime": execution.execution_time_ms or 0,
        "nodesExecuted": execution.nodes_executed,
    }
    message = (execution.error or {}).get("message")
    if message is not None:
        event["error"] = message
    metrics.execution_finished(execution)
    _emit_end(event)


def emit_span_ended(execution: Execution, spans: list[Span]) -> None:
    """span.ended with `spans` (nothing when there are none), on the execution's channel only:
    the list has no use for spans, and c4c's list clients never see an event they do not know."""
    if not spans:
        return
    event: SpanEnded = {
        **_base(execution, "span.ended"),
        "spans": [cast(SpanJson, span_json(span)) for span in spans],
    }
    channels = (execution_channel(execution.execution_id),)
    transaction.on_commit(partial(_send, channels, event["type"], Payload(event)))


def emit_node_log(
    execution: Execution, node: NodeExecution, *, node_index: int, lines: list[NodeLog]
) -> None:
    """node.log with lines one attempt just logged (saved rows), on the execution's channel
    only, as span.ended: the list has no use for them."""
    if not lines:
        return
    event: NodeLogEvent = {
        **_base(execution, "node.log"),
        "nodeId": node.node_id,
        "nodeIndex": node_index,
        "visit": node.visit,
        "attempt": lines[0].attempt,
        "lines": [cast(NodeLogLine, node_log_line(line, visit=node.visit)) for line in lines],
    }
    channels = (execution_channel(execution.execution_id),)
    transaction.on_commit(partial(_send, channels, event["type"], Payload(event)))


def emit_workflow_result(execution: Execution, result_json: str) -> None:
    """workflow.result around the result's JSON text as encoded once by the run.

    The result of a long run is large (~870 KB for 1,000 nodes); the API answers with the same
    text, so splicing it in saves encoding it a second time. Key order is WorkflowResult's.
    """
    head: ExecutionEvent = _base(execution, "workflow.result")
    _emit_end(head, Payload(text=f'{encode(head)[:-1]},"result":{result_json}}}'))


def _stats(summary: ExecutionSummary) -> Stats | None:
    """The stats as stored now; None (logged) when they cannot be read: that update is dropped
    (the next one, or a fresh snapshot, brings the list up to date) and what follows it leaves."""
    try:
        return ExecutionCounter.objects.stats()
    except Exception:
        logger.exception("Could not read the stats for %s's update", summary["executionId"])
        return None


def _send_update(summary: ExecutionSummary, stats: Stats | None) -> None:
    if stats is None:
        return
    update: ExecutionsUpdate = {
        "type": "executions.update",
        "executions": [summary],
        "stats": stats,
        "timestamp": now_ms(),
    }
    _send((LIST_CHANNEL,), update["type"], Payload(update))


def _merged(held: ExecutionSummary, newer: ExecutionSummary) -> ExecutionSummary:
    """The newer summary with the node details of both (the newer's where both have a node)."""
    held_nodes, new_nodes = held.get("nodeDetails"), newer.get("nodeDetails")
    if not isinstance(held_nodes, dict) or not isinstance(new_nodes, dict) or not held_nodes:
        return newer
    return {**newer, "nodeDetails": {**held_nodes, **new_nodes}}


class _Held(NamedTuple):
    """An update held: the summary (merged), the stats read when it was first held, when it is
    due to leave (time.monotonic)."""

    summary: ExecutionSummary
    stats: Stats | None
    due: float


class _Updates:
    """executions.update of running executions, held for C4C_UPDATE_COALESCE_MS and merged while
    the list is listened to.

    A run of n nodes sends n + 2 updates, each a stats read, an encoding, an append and a frame
    for every listener; a fast run sends them within a few ms, and a list shows the last. So while
    anyone may listen to the list, an update of a running execution is held (from its commit) for
    the window: updates of it within the window merge into it (the latest summary, every node any
    of them carried: the delta view loses no node's change), and one thread sends it when the
    window ends. An update of an execution that is no longer running (its last) leaves at once,
    and `before` sends what is held for an execution ahead of the event that ends or parks it.
    The lock is held while sending, so those orders hold whichever thread sends.

    With nobody listening (no stream of the list in this process, and events reach no other) an
    update only joins the replay buffer, unencoded: it leaves at once, as holding it would cost
    more (the sending thread's wake-ups: 13 % of an async run's CPU with 4 runs at once) than it
    saves. The stats are read in the committing thread, so the sending thread never touches the
    database: for an update held, when it is first held (at most the window old when it leaves);
    for a running execution's update sent at once, a read made within the window is reused (as
    old, at most, as a held one's); for an execution's last update, now.
    """

    def __init__(self) -> None:
        self.lock = threading.Condition()
        self.held: dict[str, _Held] = {}
        self.flusher: threading.Thread | None = None
        self.read: tuple[float, Stats] | None = None  # the last stats read, and when

    def add(self, summary: ExecutionSummary) -> None:
        window = app_settings.C4C_UPDATE_COALESCE_MS / 1000
        execution_id = summary["executionId"]
        with self.lock:
            held = self.held.pop(execution_id, None)
            if held is not None:
                summary = _merged(held.summary, summary)
            running = summary.get("status") == "running"
            if window <= 0 or not running or not _listened(LIST_CHANNEL):
                _send_update(summary, self._stats(summary, window if running else 0))
                return
            if held is not None:
                self.held[execution_id] = held._replace(summary=summary)
                return
            due = time.monotonic() + window
            self.held[execution_id] = _Held(summary, self._stats(summary, 0), due)
            if self.flusher is None or not self.flusher.is_alive():
                self.flusher = threading.Thread(target=self._flush, name="c4c-updates", daemon=True)
                self.flusher.start()
            elif len(self.held) == 1:
                self.lock.notify()  # the thread waits for work with nothing held

    def _stats(self, summary: ExecutionSummary, reused_within: float) -> Stats | None:
        """The stats read now, or the last read if it is younger than `reused_within` seconds."""
        now = time.monotonic()
        if self.read is not None and now - self.read[0] < reused_within:
            return self.read[1]
        stats = _stats(summary)
        if stats is not None:
            self.read = (now, stats)
        return stats

    def before(
        self, execution_id: str, channels: tuple[str, ...], event_type: str, data: Payload
    ) -> None:
        """Send the update held for the execution, then the event that ends or parks it."""
        with self.lock:
            held = self.held.pop(execution_id, None)
            if held is not None:
                _send_update(held.summary, held.stats)
            _send(channels, event_type, data)

    def _flush(self) -> None:
        """The sending thread: sends each held update when its window ends."""
        with self.lock:
            while True:
                if not self.held:
                    self.lock.wait()
                    continue
                now = time.monotonic()
                for execution_id in [key for key, held in self.held.items() if held.due <= now]:
                    held = self.held.pop(execution_id)
                    _send_update(held.summary, held.stats)
                if self.held:
                    self.lock.wait(min(held.due for held in self.held.values()) - now)


updates = _Updates()


def _forget_held_updates() -> None:
    """A forked child holds none of its parent's updates, nor its lock or thread."""
    global updates
    updates = _Updates()


os.register_at_fork(after_in_child=_forget_held_updates)


def emit_executions_update(execution: Execution, nodes: list[NodeExecution]) -> None:
    """The execution's summary (taken now) with `nodes` as its nodeDetails, and the stats (read
    when it is sent)."""
    summary = cast(ExecutionSummary, execution_summary(execution, nodes))
    transaction.on_commit(partial(updates.add, summary))
