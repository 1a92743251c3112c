"""Events across the daphne processes of one `c4c serve --workers N`, without Redis.

The supervisor (c4c_site.cli) runs the `Hub`; every serving process it starts is a client that
reaches it over a Unix domain socket (stdlib multiprocessing.connection: length-prefixed messages
and an authentication handshake, nothing to install). Why a hub and not peers: an SSE client that
reconnects with Last-Event-ID may land on any process, so an id must name the same event in every
process. One process numbering every event, and every process seeing them in that one order, gives
that by construction; peers would have to agree on numbers. The supervisor outlives its children,
so a restarted child finds the numbering and the replay buffer where they were.

- A child's `publish` (events.py sends through it from on_commit, so after the commit) queues the
  event; one thread writes what has queued as one message.
- The hub numbers each event in its replay buffer (executions.live.buffer, the same bounds as one
  process's) and sends the numbered batch to every child, the sender too, in the order it numbered
  them; each child queues the events to its own listeners (streams, the page keeper).
- A child's storage (`HubEventStorage`, settings choose it) reads the hub's buffer: replay for
  Last-Event-ID and the current id of a channel, one round trip each on the reading thread's own
  connection. The hub's buffer is always at least as far as what a child has delivered, so the
  streams' "listen, then read" order still sends each event once.

A child whose hub is gone (the supervisor died, or dropped it for falling MAX_BEHIND events
behind) stops itself, and a supervisor that is still there starts a fresh one; the runs it held
are resumed by another process's lease sweep. With C4C_EVENTS_REDIS_URL set, none of this runs:
django-eventstream's Redis pub/sub fans out and Redis holds replay.
"""

import logging
import os
import signal
import socket
import threading
from collections import OrderedDict
from collections.abc import Callable
from multiprocessing.connection import Client, Connection, Listener
from typing import Any

from django.conf import settings
from django_eventstream.event import Event
from django_eventstream.storage import EventDoesNotExist, StorageBase
from django_eventstream.views import get_listener_manager

from .buffer import MemoryEventStorage

logger = logging.getLogger(__name__)

# (channel, event type, data) as published; (channel, event type, data, id) once numbered.
Published = tuple[str, str, str]
Numbered = tuple[str, str, str, int]
# Numbered events a child may be behind by before the hub drops it (it then stops and is
# restarted): a child that reads nothing must not grow the supervisor's memory without end.
MAX_BEHIND = 100_000
# The events a child keeps after handing them to its listeners (see _Recent).
RECENT_EVENTS = 1_000
RECENT_BYTES = 4 * 1024 * 1024


def _hang_up(conn: Connection) -> None:
    """End the connection for both sides, waking a thread blocked reading it (close alone
    would not)."""
    try:
        with socket.socket(fileno=os.dup(conn.fileno())) as sock:
            sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


class _Outbox:
    """Items for one connection, written by one thread, each write everything queued so far."""

    def __init__(self, conn: Connection, name: str, limit: int | None = None) -> None:
        self.conn = conn
        self.limit = limit
        self.items: list[Any] = []
        self.closed = False
        self.ready = threading.Condition()
        threading.Thread(target=self._write, name=name, daemon=True).start()

    def put(self, items: list[Any]) -> bool:
        """Queue `items`; False once the connection is closed (or the limit passed: closed now)."""
        with self.ready:
            if self.closed:
                return False
            self.items.extend(items)
            if self.limit is not None and len(self.items) > self.limit:
                self.closed = True
            self.ready.notify()
        if self.closed:
            _hang_up(self.conn)
        return not self.closed

    def close(self) -> None:
        with self.ready:
            self.closed = True
            self.ready.notify()

    def _write(self) -> None:
        while True:
            with self.ready:
                while not self.items and not self.closed:
                    self.ready.wait()
                if self.closed:
                    return
                batch, self.items = self.items, []
            try:
                self.conn.send(batch)
            except (OSError, ValueError):
                self.close()
                return


class Hub:
    """The supervisor's end: numbers every child's events and sends them to every child."""

    def __init__(self, address: str, authkey: bytes) -> None:
        self.address = address
        self.storage = MemoryEventStorage()
        self.lock = threading.Lock()
        self.children: set[_Outbox] = set()
        self.listener = Listener(address, family="AF_UNIX", authkey=authkey)
        threading.Thread(target=self._accept, name="c4c-hub-accept", daemon=True).start()

    def close(self) -> None:
        self.listener.close()
        with self.lock:
            children, self.children = self.children, set()
        for outbox in children:
            outbox.close()
            _hang_up(outbox.conn)

    def _accept(self) -> None:
        while True:
            try:
                conn = self.listener.accept()
            except OSError:
                return  # closed
            except Exception:
                logger.warning("A connection to the event hub failed its handshake")
                continue
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: Connection) -> None:
        try:
            role = conn.recv()
            if role == "stream":
                self._stream(conn)
            else:
                while True:
                    conn.send(self._answer(conn.recv()))
        except (EOFError, OSError):
            pass
        finally:
            conn.close()

    def _stream(self, conn: Connection) -> None:
        outbox = _Outbox(conn, "c4c-hub-out", limit=MAX_BEHIND)
        with self.lock:
            self.children.add(outbox)
        try:
            while True:
                self._number(conn.recv())
        finally:
            with self.lock:
                self.children.discard(outbox)
            outbox.close()

    def _number(self, batch: list[Published]) -> list[Numbered]:
        append = self.storage.append_event
        with self.lock:
            numbered = [(c, t, d, int(append(c, t, d).id)) for c, t, d in batch]
            for outbox in self.children:
                outbox.put(numbered)
        return numbered

    def _answer(self, request: tuple[Any, ...]) -> tuple[Any, ...]:
        kind, channel, *rest = request
        if kind == "current":
            return ("current", self.storage.get_current_id(channel))
        if kind == "append":
            return ("appended", self._number([(channel, *rest)])[0][3])
        last_id, limit = rest
        try:
            events = self.storage.get_events(channel, last_id, limit)
        except EventDoesNotExist as exc:
            return ("reset", int(exc.current_id))
        return ("events", [(e.type, e.data, int(e.id)) for e in events])


def _configured() -> tuple[str, bytes] | None:
    address = getattr(settings, "C4C_FANOUT_SOCKET", "")
    if not address:
        return None
    return address, bytes.fromhex(getattr(settings, "C4C_FANOUT_KEY", ""))


def _connect(role: str) -> Connection:
    configured = _configured()
    assert configured is not None, "the event hub is not configured"
    conn = Client(configured[0], family="AF_UNIX", authkey=configured[1])
    conn.send(role)
    return conn


class _Recent:
    """One Event object per event id in this process, for the latest events, whichever came
    first: the link handing it over, or a stream reading it from the hub (a stream that fell
    behind - django-eventstream queues 10 events per listener - reads the missed ones back, and
    may read past what the link has handed over yet). As with one process's buffer, the page
    keeper and the frame cache then see each event once, and every client of the list stream
    writes the same page for it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.events: OrderedDict[tuple[str, int], Event] = OrderedDict()
        self.bytes = 0

    def event(self, channel: str, event_type: str, data: str, event_id: int) -> Event:
        with self.lock:
            known = self.events.get((channel, event_id))
            if known is not None:
                return known
            event = self.events[(channel, event_id)] = Event(channel, event_type, data, event_id)
            self.bytes += len(data)
            while len(self.events) > RECENT_EVENTS or (
                self.bytes > RECENT_BYTES and len(self.events) > 1
            ):
                self.bytes -= len(self.events.popitem(last=False)[1].data)
            return event


_recent = _Recent()


class _Link:
    """A child's stream connection: its published events go out, everyone's numbered come in."""

    def __init__(self) -> None:
        conn = _connect("stream")
        self.outbox = _Outbox(conn, "c4c-fanout-out")
        threading.Thread(target=self._read, args=(conn,), name="c4c-fanout-in", daemon=True).start()

    def publish(self, channel: str, event_type: str, data: str) -> None:
        if not self.outbox.put([(channel, event_type, data)]):
            raise ConnectionError("the event hub is gone")

    def _read(self, conn: Connection) -> None:
        listeners = get_listener_manager()
        try:
            while True:
                batch: list[Numbered] = conn.recv()
                for channel, event_type, data, event_id in batch:
                    event = _recent.event(channel, event_type, data, event_id)
                    listeners.add_to_queues(channel, event)
        except (EOFError, OSError):
            pass
        # The supervisor is gone or dropped this process: without the hub no event reaches
        # anyone, so stop (a supervisor that is still there starts a fresh process).
        logger.error("Lost the event hub; stopping this process")
        os.kill(os.getpid(), signal.SIGTERM)


_link: _Link | None = None


def sender() -> Callable[[str, str, str], None] | None:
    """The publish function for events.py when this process is one of a supervisor's children,
    connected now (before any stream listens); None otherwise."""
    global _link
    if _configured() is None:
        return None
    if _link is None:
        _link = _Link()
    return _link.publish


class HubEventStorage(StorageBase):
    """django-eventstream's storage in a supervised child: the hub's replay buffer, read over a
    connection of the reading thread's own (a stream's read never waits for another's)."""

    reads_block = True

    def __init__(self) -> None:
        self.local = threading.local()

    def _ask(self, *request: Any) -> tuple[Any, ...]:
        conn: Connection | None = getattr(self.local, "conn", None)
        if conn is None:
            conn = self.local.conn = _connect("query")
        try:
            conn.send(request)
            answer: tuple[Any, ...] = conn.recv()
        except (EOFError, OSError):
            self.local.conn = None
            conn.close()
            raise
        return answer

    def append_event(self, channel: str, event_type: str, data: Any) -> Event:
        """Only django-eventstream's own send_event appends here (events.py publishes)."""
        _, event_id = self._ask("append", channel, event_type, data)
        return Event(channel, event_type, data, id=event_id)

    def get_events(self, channel: str, last_id: int, limit: int = 100) -> list[Event]:
        kind, found = self._ask("events", channel, last_id, limit)
        if kind == "reset":
            raise EventDoesNotExist(f"Event {last_id + 1} is no longer buffered", found)
        return [_recent.event(channel, kind, data, event_id) for kind, data, event_id in found]

    def get_current_id(self, channel: str) -> int:
        return int(self._ask("current", channel)[1])
