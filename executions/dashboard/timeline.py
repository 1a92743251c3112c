"""Spans arranged for the Timeline (Gantt) and Trace (tree) tabs.

Both tabs show the same depth-first walk of the span tree. The page gets it as one JSON array
(`SpanRows.payload`, for its first paint and its catch-up after a reconnect) and its script,
timeline.js, draws both tabs from it: 2,000 spans as template rows with their attribute tables
took seconds to render, the JSON takes milliseconds. The script places the bars (zoom and pan
change only the view), adds the spans span.ended brings in the same order, and draws running
nodes as open bars.

The engine opens one procedure span per attempt under the node's span (`procedure.attempt`), so
a retried node has one bar per attempt: the rows name the attempt where a node had more than one.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..models import Span

_TARGET_TICKS = 6
ATTEMPT_ATTRIBUTE = "procedure.attempt"


@dataclass(frozen=True, slots=True)
class SpanRow:
    span: Span
    depth: int
    has_children: bool
    # The attempt this span ran, when that is worth saying (_shown_attempt), else None.
    attempt: int | None = None


class SpanRows(list[SpanRow]):
    """span_rows()'s rows, and what the page script reads of them."""

    @property
    def payload(self) -> list[dict[str, Any]]:
        """Each row as JSON in walk order: the span with its times in microseconds (the script
        places bars at that precision), its depth, and the attempt the row names."""
        return [
            {
                "id": row.span.span_id,
                "parent": row.span.parent_span_id,
                "name": row.span.name,
                "kind": row.span.kind,
                "startUs": row.span.start_time_us,
                "endUs": row.span.end_time_us,
                "status": row.span.status_code,
                "message": row.span.status_message,
                "attributes": row.span.attributes,
                "events": row.span.events,
                "depth": row.depth,
                "attempt": row.attempt,
            }
            for row in self
        ]


@dataclass(frozen=True, slots=True)
class Tick:
    label: str
    pct: float


def _format_ms(value: float, step: float) -> str:
    if step >= 1000:
        seconds = value / 1000
        return f"{seconds:.0f} s" if step % 1000 == 0 else f"{seconds:.1f} s"
    if step >= 1:
        return f"{value:.0f} ms"
    return f"{value:.2f} ms"


def time_axis(total_ms: float) -> list[Tick]:
    """Ticks at a 1/2/5 x 10^k step so the axis reads like a ruler at any span length."""
    if total_ms <= 0:
        return [Tick("0 ms", 0.0)]
    raw_step = total_ms / _TARGET_TICKS
    magnitude = 10 ** math.floor(math.log10(raw_step))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw_step)
    ticks: list[Tick] = []
    value = 0.0
    while value <= total_ms + step * 1e-9:
        ticks.append(Tick(_format_ms(value, step), value / total_ms * 100))
        value += step
    return ticks


def span_rows(spans: Sequence[Span]) -> SpanRows:
    """Spans depth-first under their parents (siblings by start, the longer first).

    A span whose parent is not among them (a trace that began in an HTTP request, or a parent
    not yet saved) is shown as a root rather than dropped.
    """
    if not spans:
        return SpanRows()
    ids = {span.span_id for span in spans}
    children: dict[str, list[Span]] = {}
    roots: list[Span] = []
    for span in sorted(spans, key=lambda s: (s.start_time_us, -s.end_time_us, s.span_id)):
        parent = span.parent_span_id
        if parent and parent in ids and parent != span.span_id:
            children.setdefault(parent, []).append(span)
        else:
            roots.append(span)

    retried = _retried_parents(children)
    rows = SpanRows()
    seen: set[str] = set()
    stack: list[tuple[Span, int]] = [(root, 0) for root in reversed(roots)]
    while stack:
        span, depth = stack.pop()
        if span.span_id in seen:
            continue
        seen.add(span.span_id)
        kids = children.get(span.span_id, [])
        rows.append(
            SpanRow(
                span=span,
                depth=depth,
                has_children=bool(kids),
                attempt=_shown_attempt(span, retried),
            )
        )
        stack.extend((kid, depth + 1) for kid in reversed(kids))
    return rows


def _attempt(span: Span) -> int | None:
    number = span.attributes.get(ATTEMPT_ATTRIBUTE) if isinstance(span.attributes, dict) else None
    return number if isinstance(number, int) and not isinstance(number, bool) else None


def _shown_attempt(span: Span, retried: set[str]) -> int | None:
    """The span's attempt number if it is worth saying: its node ran more than one attempt here,
    or this is a later attempt (a resumed run's, whose earlier attempts died with their process)."""
    number = _attempt(span)
    if number is None or (number == 1 and span.parent_span_id not in retried):
        return None
    return number


def _retried_parents(children: dict[str, list[Span]]) -> set[str]:
    """The spans (nodes) with more than one attempt span under them."""
    return {
        parent
        for parent, kids in children.items()
        if sum(_attempt(kid) is not None for kid in kids) > 1
    }


def trace_duration_ms(spans: Sequence[Span]) -> float:
    if not spans:
        return 0.0
    return (max(s.end_time_us for s in spans) - min(s.start_time_us for s in spans)) / 1000
