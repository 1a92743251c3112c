"""The load generator's HTTP side: keep-alive aiohttp sessions and timed requests."""

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp

JSON_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}


def session(base_url: str, *, connections: int, timeout_s: float = 60.0) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        base_url,
        connector=aiohttp.TCPConnector(limit=connections),
        timeout=aiohttp.ClientTimeout(total=timeout_s),
    )


@dataclass(frozen=True, slots=True)
class Reply:
    status: int | None
    body: bytes
    elapsed_ms: float
    error: str | None = None

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None


async def request(
    client: aiohttp.ClientSession, method: str, path: str, payload: bytes | None = None
) -> Reply:
    """One timed request; transport failures come back as a Reply with `error`, never raise."""
    started = time.perf_counter()
    try:
        async with client.request(method, path, data=payload, headers=JSON_HEADERS) as response:
            body = await response.read()
            return Reply(response.status, body, (time.perf_counter() - started) * 1000)
    except (aiohttp.ClientError, TimeoutError) as exc:
        return Reply(None, b"", (time.perf_counter() - started) * 1000, type(exc).__name__)


@dataclass
class Tally:
    """Outcomes of many requests: latencies of all of them, and why the failures failed."""

    latencies_ms: list[float] = field(default_factory=list)
    ok: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    execution_ids: list[str] = field(default_factory=list)

    def add(self, reply: Reply, problem: str | None, execution_id: str | None) -> None:
        self.latencies_ms.append(reply.elapsed_ms)
        if problem is None:
            self.ok += 1
            if execution_id:
                self.execution_ids.append(execution_id)
        else:
            self.errors[problem] += 1


def execute_problem(reply: Reply, *, wait: bool) -> tuple[str | None, str | None]:
    """Why an execute reply is not a success (None if it is), and the execution id it names.

    A waited-for execution must come back `completed`; an async one must be accepted (2xx) with
    its execution id.
    """
    if reply.error:
        return reply.error, None
    if reply.status is None or not 200 <= reply.status < 300:
        return f"http_{reply.status}", None
    document = reply.json()
    if not isinstance(document, dict):
        return "invalid_json", None
    execution_id = document.get("executionId")
    if not isinstance(execution_id, str):
        return "no_execution_id", None
    if wait and document.get("status") != "completed":
        return f"status_{document.get('status')}", execution_id
    return None, execution_id
