"""A request line longer than the server reads is answered 414 in JSON, not dropped.

Twisted's HTTPChannel (under daphne) reads the request line as a LineReceiver line of at most
MAX_LENGTH (16 KiB) and, past it, closes the connection without a word: a client that puts a
few hundred ids in a query string sees "connection reset" and no reason. HTTPChannel has no
hook for this, so the served process replaces its lineLengthExceeded (twisted 26.10, pinned in
uv.lock; tests/executions/api/test_http_surface.py pins the answer). The API documents 414 on
every operation (executions.http).
"""

import json
from typing import Any

from twisted.web.http import HTTPChannel

MESSAGE = (
    "The request line is longer than this server reads (16 KiB): send fewer or shorter query "
    "parameters"
)


def _answer_414(channel: Any, line: bytes) -> None:
    body = json.dumps({"error": MESSAGE}).encode()
    channel.transport.write(
        b"HTTP/1.1 414 URI Too Long\r\n"
        b"Content-Type: application/json\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n"
        b"Connection: close\r\n\r\n" + body
    )
    channel.loseConnection()


def answer_overlong_request_lines() -> None:
    HTTPChannel.lineLengthExceeded = _answer_414  # type: ignore[method-assign]
