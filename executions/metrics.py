"""The service's Prometheus metrics: their definitions, the one-line calls that record them, and
the text GET /metrics answers (executions.http serves it).

Recorded where each thing happens: runs started and finished by the runtime, node durations and
retries by its recorder, the pool's queue by dispatch, SSE clients and event delivery by the
streams. Every name starts with `c4c_`:

- c4c_executions_started_total{workflow}, c4c_executions_finished_total{workflow,status}
- c4c_node_duration_seconds{procedure,status}: a histogram per procedure (a node of another type,
  a condition or a parallel, is labelled by its type)
- c4c_node_retries_total{procedure}: failed attempts that are tried again
- c4c_queue_depth: runs waiting for a thread of a run pool
- c4c_executions_running: running executions, read from the O(1) counters when scraped
- c4c_sse_clients{stream}: connected SSE clients, stream "list" or "execution"
- c4c_event_delivery_delay_seconds: from an event reaching a process's fan-out to its frame
  being handed to the client's connection

The `workflow` label is the workflow's id when it is one of the library's, else "inline", so
clients posting inline definitions cannot grow the label set without end.

Aggregation: without C4C_METRICS_DIR (settings), a process counts in its own memory, which is the
whole service when one server runs its runs on its own pool. With it, every process on the host
that sets it (servers, Celery workers) writes its values to files there (prometheus-client's
multiprocess mode) and a scrape of any server sums them all. Gauges count live processes only:
the gauge files of processes that are gone are removed when a process starts and when a scrape
reads; counters and histograms keep theirs, so totals never go backwards. A scrape reads those
files and one counter row, never a table. The directory must be the host's own (pids are).
"""

import functools
import os
import re
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from workflows.library import workflow_library

from .models import Execution, ExecutionCounter, NodeExecution

CONTENT_TYPE = CONTENT_TYPE_LATEST
INLINE = "inline"
# prometheus-client names its files <kind>_<pid>.db (gauges <kind>_<mode>_<pid>.db).
_PID_FILE = re.compile(r"_(\d+)\.db$")

_registry = CollectorRegistry()

EXECUTIONS_STARTED = Counter(
    "c4c_executions_started",
    "Executions started (re-runs included), by workflow.",
    ["workflow"],
    registry=_registry,
)
EXECUTIONS_FINISHED = Counter(
    "c4c_executions_finished",
    "Executions that ended, by workflow and status (completed, failed, cancelled).",
    ["workflow", "status"],
    registry=_registry,
)
NODE_DURATION = Histogram(
    "c4c_node_duration_seconds",
    "How long each node run took, by procedure (or node type) and how it ended.",
    ["procedure", "status"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
    registry=_registry,
)
NODE_RETRIES = Counter(
    "c4c_node_retries",
    "Failed node attempts that are tried again, by procedure.",
    ["procedure"],
    registry=_registry,
)
QUEUE_DEPTH = Gauge(
    "c4c_queue_depth",
    "Runs waiting for a thread of a run pool (C4C_WORKER_THREADS), summed over processes.",
    multiprocess_mode="livesum",
    registry=_registry,
)
SSE_CLIENTS = Gauge(
    "c4c_sse_clients",
    "Connected SSE clients, by stream (list, execution).",
    ["stream"],
    multiprocess_mode="livesum",
    registry=_registry,
)
EVENT_DELIVERY_DELAY = Histogram(
    "c4c_event_delivery_delay_seconds",
    "From an event reaching a server's fan-out to its frame being handed to the client.",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
    registry=_registry,
)


class RunningCollector(Collector):
    """c4c_executions_running when scraped: the counters' running figure, one row read."""

    def collect(self) -> list[GaugeMetricFamily]:
        running = ExecutionCounter.objects.stats()["running"]
        return [GaugeMetricFamily("c4c_executions_running", "Running executions.", value=running)]


_running = RunningCollector()
_registry.register(_running)


def multiprocess_dir() -> str:
    """Where every process writes its values, or "" when each counts in its own memory."""
    return str(getattr(settings, "C4C_METRICS_DIR", "") or "")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def forget_dead_processes(directory: str) -> list[int]:
    """Remove the live-gauge files of processes that are gone; returns their pids."""
    pids = {
        int(match.group(1))
        for path in Path(directory).glob("*.db")
        if (match := _PID_FILE.search(path.name))
    }
    dead = sorted(pid for pid in pids if pid != os.getpid() and not _alive(pid))
    for pid in dead:
        multiprocess.mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]
    return dead


def render() -> bytes:
    """The text a scrape gets: every process's values when they share a directory."""
    directory = multiprocess_dir()
    if not directory:
        return generate_latest(_registry)
    forget_dead_processes(directory)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    registry.register(_running)
    return generate_latest(registry)


def workflow_label(workflow_id: str) -> str:
    return workflow_id if workflow_library().get(workflow_id) is not None else INLINE


@functools.cache
def _child(metric: Any, *labels: str) -> Any:
    """metric.labels(*labels), looked up once per labels: labels() checks and joins them on every
    call (a few dozen calls per run), and prometheus-client keeps every child for good anyway, so
    remembering them here holds nothing more."""
    return metric.labels(*labels)


def execution_started(execution: Execution) -> None:
    _child(EXECUTIONS_STARTED, workflow_label(execution.workflow_id)).inc()


def execution_finished(execution: Execution) -> None:
    _child(EXECUTIONS_FINISHED, workflow_label(execution.workflow_id), execution.status).inc()


def _procedure(node: NodeExecution) -> str:
    return node.procedure_name or node.node_type


def node_finished(node: NodeExecution) -> None:
    """A node run that completed or failed for good (its last attempt)."""
    if node.duration_ms is not None:
        _child(NODE_DURATION, _procedure(node), node.status).observe(node.duration_ms / 1000)


def node_retried(node: NodeExecution) -> None:
    _child(NODE_RETRIES, _procedure(node)).inc()


def sse_clients(*, list_stream: bool) -> Gauge:
    """The gauge of one stream's clients: inc() when one connects, dec() when it goes."""
    return SSE_CLIENTS.labels("list" if list_stream else "execution")


def event_delivered(woken_at: float | None) -> None:
    """Frames were handed to a client; `woken_at` (time.monotonic()) is when the first of their
    events reached this process, None for frames no event woke (a keep-alive, a catch-up)."""
    if woken_at is not None:
        EVENT_DELIVERY_DELAY.observe(time.monotonic() - woken_at)


if multiprocess_dir():
    forget_dead_processes(multiprocess_dir())
