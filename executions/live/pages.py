"""The list stream's c4c view: every executions.update carries the newest page of the list.

c4c's UI replaces its executions list with each executions.update's `executions`, but the runtime
sends only the execution that changed (cheap; our dashboard asks for exactly that, ?view=delta).
So each web process keeps the newest page itself, at most PAGE_SIZE list rows (the executions
executions.initial lists): seeded from the snapshot's database read and then updated from the
deltas as they reach this process, sent here or fanned out through Redis. No event costs a query,
and an update's size is bounded by the page, whatever the history.

The keeper is a django-eventstream listener of the list channel that streams nothing: the listener
manager hands it each event under its lock, before any stream can take that event from its own
queue, so the page an update carries always includes the update. It listens only while a c4c
client is connected (each update costs the sending thread its parse: up to ~0.1 ms per node for
a 1,000-node run), and is seeded afresh when the next one connects. Each row is encoded once when it
changes; each update gets an immutable `PageState` (the encoded rows, the stats it carried) on its
event, so every c4c client gets the same bytes for the same event id, in a replay too, and its
frame is encoded once for all of them.
"""

import json
import logging
import threading
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from django_eventstream.event import Event
from django_eventstream.views import Listener, get_listener_manager

from ..serializers import NOT_JSON_NUMBER, cannot_show, list_row, to_json, unencodable
from .buffer import BufferedEvent, data_lines, frame_head, sse_frame
from .events import LIST_CHANNEL, encode, now_ms
from .payloads import Stats

logger = logging.getLogger(__name__)

PAGE_SIZE = 50
UPDATE = "executions.update"
# Updates applied, kept to re-apply those newer than a fresh database read (see PageKeeper.seed):
# the updates sent while one read runs.
APPLIED_LOG = 200
# Frames of the latest page states: every c4c client writes the same few at about the same time.
FRAME_CACHE = 16
_STATE = "page_state"


@dataclass(frozen=True, slots=True)
class _Row:
    execution_id: str
    start_time: str
    json: str


@dataclass(frozen=True, eq=False, slots=True)
class PageState:
    """The page as one executions.update carries it: encoded rows (newest first) and stats."""

    rows: tuple[str, ...]
    stats: str
    timestamp: int

    def data(self) -> str:
        executions = ",".join(self.rows)
        return (
            f'{{"type":"{UPDATE}","executions":[{executions}],'
            f'"stats":{self.stats},"timestamp":{self.timestamp}}}'
        )


def _row(summary: Any) -> _Row | None:
    """An execution summary as an encoded list row; its marker if it cannot be encoded."""
    if not isinstance(summary, Mapping):
        return None
    row = list_row(summary)
    try:
        text = to_json(row)
    except ValueError:
        marker = list_row(cannot_show(dict(summary), unencodable(row) or NOT_JSON_NUMBER))
        try:
            text = to_json(marker)
        except ValueError:
            logger.warning("Execution %r cannot be listed", summary.get("executionId"))
            return None
    return _Row(str(row.get("executionId", "")), str(row.get("startTime") or ""), text.decode())


def _event_id(event: Event) -> int | None:
    try:
        return int(event.id) if event.id is not None else None
    except ValueError:
        return None


class PageKeeper(Listener):
    """This process's newest page, kept from the list channel's events (see the module's doc).

    Every method runs under the listener manager's lock: the manager calls wake_threadsafe with
    it held, and the others take it.
    """

    def __init__(self, size: int = PAGE_SIZE) -> None:
        super().__init__()
        self.user_id = "anonymous"
        self.channels = {LIST_CHANNEL}
        self.size = size
        self.rows: list[_Row] = []
        self.seeded = False
        self.seeded_at = 0
        self.last_id = 0
        self.current: PageState | None = None
        self.pending: list[Event] = []
        self.applied: deque[tuple[int, _Row]] = deque(maxlen=APPLIED_LOG)

    def wake_threadsafe(self) -> None:
        """The manager queued events for this listener: apply them now, before it lets go."""
        queued = self.channel_items.pop(LIST_CHANNEL, [])
        if self.seeded:
            for event in queued:
                self._apply(event)
        else:
            self.pending.extend(queued)

    def seed(self, list_id: int, summaries: Iterable[Any], stats: Stats) -> None:
        """Replace the page with a database read taken after the list channel's event `list_id`,
        then re-apply the updates after it that this keeper has applied already (the read may
        predate them) and apply those that arrived before the first seed."""
        rows = [row for row in map(_row, summaries) if row is not None]
        with get_listener_manager().lock:
            self.rows = rows[: self.size]
            for event_id, row in self.applied:
                if event_id > list_id:
                    self._upsert(row)
            self.current = self._state(encode(stats), now_ms())
            self.seeded_at = max(self.seeded_at, list_id)
            self.seeded = True
            pending, self.pending = self.pending, []
            for event in pending:
                self._apply(event)

    def catch_up(self, event: Event) -> None:
        """Apply an update a stream read from the storage before the manager queued it here."""
        with get_listener_manager().lock:
            event_id = _event_id(event)
            if self.seeded and event_id is not None and event_id > self.last_id:
                self._apply(event)

    def _apply(self, event: Event) -> None:
        if event.type != UPDATE or _STATE in vars(event):
            return
        event_id = _event_id(event)
        if event_id is not None:
            self.last_id = max(self.last_id, event_id)
        try:
            update = (
                event.payload.loaded()
                if isinstance(event, BufferedEvent)
                else json.loads(event.data)
            )
            summaries, stats, timestamp = update["executions"], update["stats"], update["timestamp"]
        except (TypeError, ValueError, KeyError):
            logger.warning("executions.update %s is not one the runtime sends", event.id)
            summaries, stats, timestamp = [], None, now_ms()
        # An update the seed's read already holds: its rows are not older news to apply.
        if event_id is None or event_id > self.seeded_at:
            for row in filter(None, map(_row, summaries)):
                self._upsert(row)
                if event_id is not None:
                    self.applied.append((event_id, row))
        current = self.current
        stats_json = encode(stats) if stats is not None else (current.stats if current else "{}")
        self.current = self._state(stats_json, timestamp)
        vars(event)[_STATE] = self.current

    def _upsert(self, row: _Row) -> None:
        """Replace the execution's row, or place a new one by start time (newest first)."""
        rows = self.rows
        for index, existing in enumerate(rows):
            if existing.execution_id == row.execution_id:
                rows[index] = row
                return
        if len(rows) >= self.size and row.start_time < rows[-1].start_time:
            return
        position = next((i for i, r in enumerate(rows) if r.start_time <= row.start_time), None)
        rows.insert(len(rows) if position is None else position, row)
        del rows[self.size :]

    def _state(self, stats: str, timestamp: int) -> PageState:
        return PageState(tuple(row.json for row in self.rows), stats, timestamp)


_keeper: PageKeeper | None = None
_watchers = 0
_keeper_lock = threading.Lock()


def keeper() -> PageKeeper | None:
    """This process's keeper while a c4c client is connected, else None."""
    return _keeper


def keep() -> PageKeeper:
    """A c4c client connects: keep the page, listening before the seed's read (the snapshot).

    Called from the list stream's view on the event loop: django-eventstream starts its Redis
    subscriber from the loop of the first listener added. Each call is paired with release().
    """
    global _keeper, _watchers
    with _keeper_lock:
        _watchers += 1
        if _keeper is None:
            created = PageKeeper()
            get_listener_manager().add_listener(created)
            _keeper = created
        return _keeper


def release() -> None:
    """A c4c client left: the last one stops the keeping until the next connects."""
    global _keeper, _watchers
    with _keeper_lock:
        _watchers -= 1
        if _watchers <= 0 and _keeper is not None:
            get_listener_manager().remove_listener(_keeper)
            _keeper, _watchers = None, 0


@lru_cache(maxsize=FRAME_CACHE)
def _frame(state: PageState, head: bytes) -> bytes:
    return head + data_lines(state.data())


def page_frame(event: Event) -> bytes:
    """The event's frame for a c4c client: an executions.update carries the page as it was
    after that update; every other event goes as it was sent."""
    kept = _keeper
    if event.type != UPDATE or kept is None:
        return sse_frame(event)
    state = vars(event).get(_STATE)
    if state is None:
        kept.catch_up(event)
        state = vars(event).get(_STATE) or kept.current
    if state is None:
        return sse_frame(event)
    return _frame(state, frame_head(event))
