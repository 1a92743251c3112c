"""OpenTelemetry SDK set-up and the span processor that files each span under its execution.

The engine only uses the OTel API; here the SDK provider gets a processor that recognises each
run's root span (`workflow.execute` with attribute workflow.execution_id), remembers its trace id,
and files every span of that trace with the run. Spans are grouped by trace id, never by "the
current run", so 16+ executions at once never lose or swap spans. The standard OTEL_* variables
add OTLP (or console) export beside it.
"""

import os
import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace import Span as SdkSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

from .conf import app_settings
from .models import Span
from .payloads import bounded, is_storable_text, storable_text

ROOT_SPAN = "workflow.execute"
# Stands in for a span a dead process never saved (store.span_root_lost).
INTERRUPTED_SPAN = "workflow.interrupted"
EXECUTION_ATTRIBUTE = "workflow.execution_id"
_MAX_UNCLAIMED_TRACES = 256


class Collection:
    """The spans of one execution, filled by the processor while the run lasts.

    `take()` hands out the spans that ended since the last take, each once, so the runtime can
    convert them to rows (once), save and announce them while the run goes on. A span taken is
    let go: the rows stand for it, so a long run does not keep every SDK span alive to its end.
    """

    def __init__(self, execution_id: str, lock: threading.Lock) -> None:
        self.execution_id = execution_id
        self.spans: list[ReadableSpan] = []
        self._lock = lock

    def take(self) -> list[ReadableSpan]:
        """The spans that ended since the last take (none taken twice), oldest first."""
        with self._lock:
            fresh, self.spans = self.spans, []
        return fresh


class ExecutionSpanProcessor(SpanProcessor):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._collections: dict[str, Collection] = {}
        self._traces: dict[int, Collection] = {}
        # Spans of a trace whose root has not said which execution it is yet (the root ends
        # last; an engine may set the attribute after start). Bounded: unrelated traces
        # (HTTP requests) pass through here and are dropped oldest first.
        self._unclaimed: OrderedDict[int, list[ReadableSpan]] = OrderedDict()

    @contextmanager
    def collect(self, execution_id: str) -> Iterator[Collection]:
        collection = Collection(execution_id, self._lock)
        with self._lock:
            self._collections[execution_id] = collection
        try:
            yield collection
        finally:
            with self._lock:
                self._collections.pop(execution_id, None)
                for trace_id in [t for t, c in self._traces.items() if c is collection]:
                    del self._traces[trace_id]

    def _claim(self, span: ReadableSpan) -> Collection | None:
        if span.parent is not None or span.name != ROOT_SPAN or span.attributes is None:
            return None
        collection = self._collections.get(str(span.attributes.get(EXECUTION_ATTRIBUTE, "")))
        if collection is not None:
            trace_id = span.context.trace_id
            self._traces[trace_id] = collection
            collection.spans.extend(self._unclaimed.pop(trace_id, []))
        return collection

    def on_start(self, span: SdkSpan, parent_context: Context | None = None) -> None:
        if span.parent is None and span.name == ROOT_SPAN:
            with self._lock:
                self._claim(span)

    def on_end(self, span: ReadableSpan) -> None:
        trace_id = span.context.trace_id
        with self._lock:
            if not self._collections:
                return
            collection = self._traces.get(trace_id) or self._claim(span)
            if collection is not None:
                collection.spans.append(span)
                return
            self._unclaimed.setdefault(trace_id, []).append(span)
            self._unclaimed.move_to_end(trace_id)
            while len(self._unclaimed) > _MAX_UNCLAIMED_TRACES:
                self._unclaimed.popitem(last=False)

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


span_processor = ExecutionSpanProcessor()
_configured = threading.Lock()
_done = False


def _exporters() -> list[str]:
    """OTLP when an endpoint or OTEL_TRACES_EXPORTER asks for it; nothing leaves otherwise."""
    names = [n.strip() for n in os.environ.get("OTEL_TRACES_EXPORTER", "").split(",") if n.strip()]
    if not names and (
        os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    ):
        names = ["otlp"]
    return [n for n in names if n != "none"]


def configure_tracing() -> None:
    """Install the SDK provider once per process (idempotent; safe from any entry point)."""
    global _done
    with _configured:
        if _done:
            return
        provider = trace.get_tracer_provider()
        if not isinstance(provider, TracerProvider):
            service = os.environ.get("OTEL_SERVICE_NAME", "c4c-django")
            provider = TracerProvider(resource=Resource.create({"service.name": service}))
            trace.set_tracer_provider(provider)
        provider.add_span_processor(span_processor)
        for name in _exporters():
            if name.startswith("otlp"):
                from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
                    OTLPSpanExporter,
                )

                provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
            elif name == "console":
                provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
        _done = True


def collect(execution_id: str) -> AbstractContextManager[Collection]:
    configure_tracing()
    return span_processor.collect(execution_id)


# The most bytes one character can take in payloads.dumps' ASCII-escaped JSON: a character outside
# the BMP becomes a surrogate pair, two \uXXXX escapes.
_MAX_BYTES_PER_CHAR = 12


def current_span_ids() -> tuple[str, str] | None:
    """(trace id, span id) of the thread's current span, as spans are stored; None outside one."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return trace.format_trace_id(context.trace_id), trace.format_span_id(context.span_id)


def _attributes(attributes: Mapping[str, Any] | None) -> Any:
    """bounded() of a span's (or a span event's) attributes, without its encode-and-decode when
    that cannot matter.

    bounded() round-trips a value through JSON to make it JSON-native and to measure it: two
    spans per node made that ~2 % of a run, and each log line is an event of its span.
    Attributes holding only strings, ints and bools are JSON-native already, and when even their
    worst-case encoded size fits the bound they are stored as they are; anything else (floats,
    sequences, big values, text a database cannot hold) still goes through bounded().
    """
    values = dict(attributes or {})
    worst = 2
    for key, value in values.items():
        # is_storable_text's own first test in place: most attributes are ASCII, and it is a call.
        if isinstance(value, str) and (
            (value.isascii() and "\x00" not in value) or is_storable_text(value)
        ):
            worst += _MAX_BYTES_PER_CHAR * (len(key) + len(value)) + 6
        elif isinstance(value, int):
            worst += _MAX_BYTES_PER_CHAR * len(key) + len(str(value)) + 4
        else:
            return bounded(values)
    return values if worst <= app_settings.C4C_MAX_PAYLOAD_BYTES else bounded(values)


def span_rows(spans: list[ReadableSpan]) -> list[Span]:
    """Unsaved Span rows (the store attaches and saves them), ids in OTel's hex form."""
    rows = []
    for span in spans:
        context = span.context
        start = span.start_time or 0
        rows.append(
            Span(
                trace_id=format(context.trace_id, "032x"),
                span_id=format(context.span_id, "016x"),
                parent_span_id=format(span.parent.span_id, "016x") if span.parent else "",
                name=span.name,
                kind=span.kind.name,
                start_time_us=start // 1000,
                end_time_us=(span.end_time or start) // 1000,
                status_code=span.status.status_code.name,
                status_message=storable_text(span.status.description or ""),
                attributes=_attributes(span.attributes),
                events=[
                    {
                        "name": event.name,
                        "timestamp": event.timestamp / 1_000_000,
                        "attributes": _attributes(event.attributes),
                    }
                    for event in span.events
                ],
            )
        )
    return rows
