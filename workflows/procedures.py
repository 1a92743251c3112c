"""Example procedures shipped with the project, discovered like any app's `procedures.py`.

data.fetch reads from a deterministic in-process catalogue (no network: the engine package does no
I/O and the examples must run the same everywhere); an app that needs real HTTP registers its own
procedure. custom.delay honours settings.C4C_DELAY_SCALE (default 1.0) so tests and demos can
run the long example quickly; it waits with ctx.sleep, so a cancel or a timeout ends it at once,
and logs its wait (a line per second), so the node panel shows a long node's logs live.
custom.flaky fails its first `failTimes` attempts, for retry demos: it counts by ctx.attempt, which
a resumed run continues, so it needs no state of its own.
"""

import logging
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, WithJsonSchema
from pydantic_core import PydanticCustomError

from .conf import app_settings
from .context import ProcedureContext
from .registry import procedure

logger = logging.getLogger("workflows.custom.log")
delay_log = logging.getLogger("workflows.custom.delay")


def _number(value: Any) -> int | float:
    """JSON numbers keep their kind (15, not 15.0, as c4c answers); strings and booleans fail."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PydanticCustomError(
            "number_type", "Input should be a number, not {kind}", {"kind": type(value).__name__}
        )
    return value


Number = Annotated[int | float, PlainValidator(_number), WithJsonSchema({"type": "number"})]


class Operands(BaseModel):
    a: Number
    b: Number


class MathResult(BaseModel):
    result: Number


@procedure("math.add", description="Add two numbers.", category="math", tags=("math",))
def add(data: Operands) -> MathResult:
    return MathResult(result=data.a + data.b)


@procedure("math.multiply", description="Multiply two numbers.", category="math", tags=("math",))
def multiply(data: Operands) -> MathResult:
    return MathResult(result=data.a * data.b)


@procedure("math.subtract", description="Subtract b from a.", category="math", tags=("math",))
def subtract(data: Operands) -> MathResult:
    return MathResult(result=data.a - data.b)


class LogInput(BaseModel):
    message: str = Field(max_length=10_000)
    level: Literal["debug", "info", "warning", "error"] = "info"


class LogOutput(BaseModel):
    logged: bool
    message: str
    level: str


@procedure(
    "custom.log",
    description="Write a message to the application log.",
    category="custom",
    tags=("logging",),
)
def log(data: LogInput) -> LogOutput:
    logger.log(logging.getLevelNamesMapping()[data.level.upper()], "%s", data.message)
    return LogOutput(logged=True, message=data.message, level=data.level)


class DelayInput(BaseModel):
    ms: int = Field(ge=0, le=600_000, description="How long to wait, in milliseconds.")


class DelayOutput(BaseModel):
    delayed_ms: int


@procedure(
    "custom.delay",
    description="Wait a while, to make runs long enough to watch live; stops at once on cancel.",
    category="custom",
    tags=("timing",),
)
def delay(data: DelayInput, ctx: ProcedureContext) -> DelayOutput:
    """Logs the wait, then a line per second of it (what the node panel shows live)."""
    seconds = data.ms * app_settings.C4C_DELAY_SCALE / 1000
    delay_log.info("Waiting %d ms", data.ms)
    waited = 0.0
    while seconds - waited > 1.0:
        ctx.sleep(1.0)
        waited += 1.0
        delay_log.info("Still waiting: %.0f of %.0f s", waited, seconds)
    ctx.sleep(seconds - waited)
    return DelayOutput(delayed_ms=data.ms)


class FlakyInput(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    fail_times: int = Field(
        default=2, ge=0, le=100, alias="failTimes", description="How many first attempts fail."
    )


class FlakyOutput(BaseModel):
    attempt: int


@procedure(
    "custom.flaky",
    description="Fail the first failTimes attempts with ConnectionError, then succeed.",
    category="custom",
    tags=("retry", "example"),
)
def flaky(data: FlakyInput, ctx: ProcedureContext) -> FlakyOutput:
    if ctx.attempt <= data.fail_times:
        raise ConnectionError(
            f"custom.flaky: attempt {ctx.attempt} fails ({data.fail_times} planned failures)"
        )
    return FlakyOutput(attempt=ctx.attempt)


class NoInput(BaseModel):
    pass


class NoOutput(BaseModel):
    pass


@procedure(
    "custom.noop",
    description="Do nothing; measures the engine's own cost per node.",
    category="custom",
    tags=("benchmark",),
)
def noop(data: NoInput) -> NoOutput:
    return NoOutput()


_CATALOGUE: dict[str, list[dict[str, Any]]] = {
    "users": [
        {"id": i, "name": name, "active": i % 3 != 0}
        for i, name in enumerate(["ada", "grace", "alan", "edsger", "barbara", "ken", "dennis"], 1)
    ],
    "orders": [
        {"id": i, "amount": (i * 37) % 100 + 5, "userId": (i % 7) + 1} for i in range(1, 21)
    ],
    "metrics": [{"name": f"cpu.{i}", "value": round((i * 0.173) % 1, 3)} for i in range(12)],
}


class FetchInput(BaseModel):
    source: str = Field(description=f"One of: {', '.join(sorted(_CATALOGUE))}.")
    limit: int = Field(default=5, ge=1, le=100)


class FetchOutput(BaseModel):
    source: str
    items: list[dict[str, Any]]
    count: int


@procedure(
    "data.fetch",
    description="Fetch records from the in-process sample catalogue (users, orders, metrics).",
    category="data",
    tags=("data", "example"),
)
def fetch(data: FetchInput) -> FetchOutput:
    if data.source not in _CATALOGUE:
        raise LookupError(
            f"Unknown data source {data.source!r}; available: {', '.join(sorted(_CATALOGUE))}"
        )
    items = _CATALOGUE[data.source][: data.limit]
    return FetchOutput(source=data.source, items=items, count=len(items))
