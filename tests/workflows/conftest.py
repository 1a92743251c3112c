"""Fixtures for engine tests: a recording observer, a registry with test procedures, spans."""

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic import BaseModel

from workflows.context import ProcedureContext
from workflows.definitions import WorkflowDefinition
from workflows.engine import run_workflow
from workflows.observer import RunResult
from workflows.registry import ProcedureRegistry, procedure, procedure_registry

from .helpers import RecordingObserver


class Value(BaseModel):
    value: int = 0


class Ms(BaseModel):
    ms: int = 0


def _test_registry() -> ProcedureRegistry:
    registry = ProcedureRegistry()
    for proc in procedure_registry().all():
        registry.register(proc)

    @procedure("test.boom", registry=registry)
    def boom(data: Value) -> Value:
        raise RuntimeError(f"boom at {data.value}")

    @procedure("test.bad_output", registry=registry)
    def bad_output(data: Value) -> Value:
        return {"value": "not a number"}  # type: ignore[return-value]

    @procedure("test.async_double", registry=registry)
    async def async_double(data: Value) -> Value:
        return Value(value=data.value * 2)

    @procedure("test.increment", registry=registry)
    def increment(data: Value) -> Value:
        return Value(value=data.value + 1)

    @procedure("test.sleep", registry=registry)
    def sleep(data: Ms) -> Ms:
        time.sleep(data.ms / 1000)
        return Ms(ms=data.ms)

    @procedure("test.sleep_then_fail", registry=registry)
    def sleep_then_fail(data: Ms) -> Ms:
        time.sleep(data.ms / 1000)
        raise ValueError(f"failed after {data.ms} ms")

    @procedure("test.ctx_sleep", registry=registry)
    def ctx_sleep(data: Ms, ctx: ProcedureContext) -> Ms:
        ctx.sleep(data.ms / 1000)
        return Ms(ms=data.ms)

    @procedure("test.async_sleep", registry=registry)
    async def async_sleep(data: Ms) -> Ms:
        await asyncio.sleep(data.ms / 1000)
        return Ms(ms=data.ms)

    return registry


@pytest.fixture
def observer() -> RecordingObserver:
    return RecordingObserver()


@pytest.fixture(scope="session")
def test_registry() -> ProcedureRegistry:
    return _test_registry()


@pytest.fixture
def registry(test_registry: ProcedureRegistry) -> ProcedureRegistry:
    """The test procedures plus those a test defines itself (closures over its own counters)."""
    own = ProcedureRegistry()
    for proc in test_registry.all():
        own.register(proc)
    return own


Runner = Callable[..., RunResult]


@pytest.fixture
def run(observer: RecordingObserver, test_registry: ProcedureRegistry) -> Runner:
    """run(definition_or_json, input=None, **engine kwargs) with the recording observer."""

    def runner(
        definition: WorkflowDefinition | dict[str, Any],
        input: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> RunResult:
        if isinstance(definition, dict):
            definition = WorkflowDefinition.model_validate(definition)
        kwargs.setdefault("registry", test_registry)
        return run_workflow(
            definition, input, execution_id=f"test-{definition.id}", observer=observer, **kwargs
        )

    return runner


@pytest.fixture(scope="session")
def _span_exporter() -> InMemorySpanExporter:
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter


@pytest.fixture
def spans(_span_exporter: InMemorySpanExporter) -> Callable[[str], list[ReadableSpan]]:
    """spans(trace_id) -> the finished spans of that trace (hex id, as RunResult.trace_id)."""
    _span_exporter.clear()

    def of_trace(trace_id: str) -> list[ReadableSpan]:
        return [
            s
            for s in _span_exporter.get_finished_spans()
            if s.context is not None and f"{s.context.trace_id:032x}" == trace_id
        ]

    return of_trace
