"""Many cheap SSE clients: a raw asyncio protocol that only timestamps and keeps the bytes.

With a thousand clients on one event loop, parsing while receiving would delay the arrival time
of the next client's copy of the same event and so inflate the figure being measured. Each
client therefore records (arrival ms, bytes) and everything is parsed after the run: HTTP framing
(chunked transfer) by h11, then the text/event-stream format.
"""

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any

import h11


def now_ms() -> float:
    return time.time_ns() / 1e6


@dataclass(frozen=True, slots=True)
class SseEvent:
    name: str
    data: str
    event_id: str | None
    recv_ms: float

    def json(self) -> Any:
        try:
            return json.loads(self.data)
        except ValueError:
            return None


class StreamRecorder(asyncio.Protocol):
    def __init__(self, host: str, port: int, path: str) -> None:
        self.client = h11.Connection(h11.CLIENT)
        self.request = self.client.send(
            h11.Request(
                method="GET",
                target=path,
                headers=[
                    ("Host", f"{host}:{port}"),
                    ("Accept", "text/event-stream"),
                    ("Cache-Control", "no-cache"),
                ],
            )
        ) + self.client.send(h11.EndOfMessage())
        self.chunks: list[tuple[float, bytes]] = []
        self.transport: asyncio.Transport | None = None
        self.first_data = asyncio.get_running_loop().create_future()
        self.last_recv_ms = 0.0
        self.lost: BaseException | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        received = now_ms()
        self.chunks.append((received, data))
        self.last_recv_ms = received
        if not self.first_data.done():
            self.first_data.set_result(received)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = exc or ConnectionResetError("server closed the stream")
        if not self.first_data.done():
            self.first_data.set_exception(self.lost)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def wire_bytes_since(self, since_ms: float) -> int:
        return sum(len(data) for received, data in self.chunks if received >= since_ms)

    def parse(self) -> tuple[int | None, list[SseEvent]]:
        """HTTP status and the events, each stamped with the arrival of its last byte."""
        status: int | None = None
        parser = SseParser()
        events: list[SseEvent] = []
        for received, data in self.chunks:
            self.client.receive_data(data)
            while True:
                try:
                    item = self.client.next_event()
                except h11.RemoteProtocolError:
                    return status, events
                if item in (h11.NEED_DATA, h11.PAUSED) or isinstance(item, h11.EndOfMessage):
                    break
                if isinstance(item, h11.Response):
                    status = item.status_code
                elif isinstance(item, h11.Data):
                    events.extend(parser.feed(bytes(item.data), received))
        return status, events


class SseParser:
    """The text/event-stream format (WHATWG HTML, server-sent events), fed in arbitrary pieces."""

    def __init__(self) -> None:
        self.buffer = b""
        self.name = ""
        self.data: list[str] = []
        self.event_id: str | None = None

    def feed(self, data: bytes, recv_ms: float) -> list[SseEvent]:
        self.buffer += data
        events: list[SseEvent] = []
        lines = self.buffer.replace(b"\r\n", b"\n").split(b"\n")
        self.buffer = lines.pop()
        for raw in lines:
            line = raw.decode("utf-8", errors="replace")
            if not line:
                if self.data:
                    events.append(
                        SseEvent(
                            self.name or "message", "\n".join(self.data), self.event_id, recv_ms
                        )
                    )
                self.name, self.data = "", []
                continue
            if line.startswith(":"):
                continue
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "event":
                self.name = value
            elif field == "data":
                self.data.append(value)
            elif field == "id":
                self.event_id = value
        return events


async def open_recorders(
    host: str, port: int, path: str, count: int, *, batch: int = 50, timeout_s: float = 30.0
) -> tuple[list[StreamRecorder], list[str]]:
    """Connect `count` clients a batch at a time (daphne's listen backlog is small), each waiting
    for its first bytes. Returns the connected recorders and the errors of those that failed."""
    loop = asyncio.get_running_loop()
    connected: list[StreamRecorder] = []
    errors: list[str] = []

    async def one() -> None:
        try:
            _, recorder = await asyncio.wait_for(
                loop.create_connection(lambda: StreamRecorder(host, port, path), host, port),
                timeout_s,
            )
        except (OSError, TimeoutError) as exc:
            errors.append(f"connect: {type(exc).__name__}: {exc}")
            return
        try:
            await asyncio.wait_for(asyncio.shield(recorder.first_data), timeout_s)
        except (OSError, TimeoutError) as exc:
            recorder.close()
            errors.append(f"first bytes: {type(exc).__name__}: {exc}")
            return
        connected.append(recorder)

    for start in range(0, count, batch):
        await asyncio.gather(*(one() for _ in range(min(batch, count - start))))
    return connected, errors
