"""Typed procedures: the units of work a procedure node calls, with pydantic contracts.

A procedure is a plain function taking one pydantic model and returning another, registered with
the `procedure` decorator:

    @procedure("math.add", description="Add two numbers", category="math", tags=("math",))
    def add(data: AddInput) -> MathResult:
        return MathResult(result=data.a + data.b)

The models come from the type hints (or `input_model=` / `output_model=`); the name defaults to the
function's name, as c4c names a procedure after its export. Input is validated before the handler
runs and output after it, so a contract failure names the field and fails the node instead of
surfacing as a crash deep inside the handler. A second parameter annotated `ProcedureContext`
receives the run's context (workflows.context). `async def` handlers are run to completion under
their own event loop on the calling thread, because the engine is synchronous; when the attempt is
stopped (cancel, timeout) their task is cancelled.
"""

import asyncio
import contextlib
import contextvars
import inspect
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, get_type_hints

from pydantic import BaseModel, ValidationError

from .context import ProcedureContext, enter_context, leave_context
from .errors import (
    DuplicateDefinition,
    ProcedureInputError,
    ProcedureOutputError,
    validation_messages,
)

Handler = Callable[..., Any]


@dataclass(frozen=True, slots=True)
class Procedure:
    name: str
    description: str
    input_model: type[BaseModel]
    output_model: type[BaseModel]
    handler: Handler
    category: str = ""
    tags: tuple[str, ...] = ()
    source: str = ""
    takes_context: bool = False

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.handler)

    def invoke(
        self, raw_input: dict[str, Any], context: ProcedureContext | None = None
    ) -> dict[str, Any]:
        """Validate the input, run the handler, validate the output; return plain JSON data.

        `context` is what the handler (or current_context()) sees; a call outside a run gets a
        standalone one.
        """
        try:
            data = self.input_model.model_validate(raw_input)
        except ValidationError as exc:
            raise ProcedureInputError(
                f"Input to {self.name} is invalid: {'; '.join(validation_messages(exc))}"
            ) from exc
        if context is None:
            context = ProcedureContext.standalone(self.name)
        token = enter_context(context)
        try:
            result = self.handler(data, context) if self.takes_context else self.handler(data)
            if self.is_async:
                result = _run_async(result, context)
        finally:
            leave_context(token)
        if isinstance(result, BaseModel):
            result = result.model_dump()
        try:
            output = self.output_model.model_validate(result)
        except ValidationError as exc:
            raise ProcedureOutputError(
                f"Output of {self.name} is invalid: {'; '.join(validation_messages(exc))}"
            ) from exc
        return output.model_dump(mode="json")


def _run_async(coroutine: Any, context: ProcedureContext) -> Any:
    """Run a coroutine to completion from synchronous code, even on a thread with a running loop.

    Its task is cancelled when the context's attempt is stopped.
    """
    main = _cancellable(coroutine, context)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(main)
    copied = contextvars.copy_context()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="c4c-async") as pool:
        return pool.submit(copied.run, asyncio.run, main).result()


async def _cancellable(coroutine: Any, context: ProcedureContext) -> Any:
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    if task is not None:
        context.on_cancel(lambda: _cancel_task(loop, task))
    return await coroutine


def _cancel_task(loop: asyncio.AbstractEventLoop, task: "asyncio.Task[Any]") -> None:
    with contextlib.suppress(RuntimeError):  # the loop already closed: the task is over
        loop.call_soon_threadsafe(task.cancel)


class ProcedureRegistry:
    """Procedures by name. Registering a second, different procedure under a name is an error."""

    def __init__(self) -> None:
        self._procedures: dict[str, Procedure] = {}
        self._lock = threading.Lock()

    def register(self, proc: Procedure) -> Procedure:
        with self._lock:
            existing = self._procedures.get(proc.name)
            if existing is not None and existing.source != proc.source:
                raise DuplicateDefinition(
                    f"Procedure {proc.name!r} is defined twice: in {existing.source} "
                    f"and in {proc.source}"
                )
            self._procedures[proc.name] = proc
        return proc

    def get(self, name: str) -> Procedure | None:
        return self._procedures.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._procedures

    def __iter__(self) -> Iterator[Procedure]:
        return iter(self.all())

    def all(self) -> list[Procedure]:
        return sorted(self._procedures.values(), key=lambda p: p.name)


_registry = ProcedureRegistry()


def procedure_registry() -> ProcedureRegistry:
    """The process-wide registry filled by the `procedures.py` modules of installed apps."""
    return _registry


def procedure(
    name: str | None = None,
    *,
    description: str = "",
    category: str = "",
    tags: tuple[str, ...] | list[str] = (),
    input_model: type[BaseModel] | None = None,
    output_model: type[BaseModel] | None = None,
    registry: ProcedureRegistry | None = None,
) -> Callable[[Handler], Handler]:
    """Register the decorated function as a procedure; the function itself is returned unchanged."""

    def decorate(fn: Handler) -> Handler:
        hints = get_type_hints(fn)
        params = list(inspect.signature(fn).parameters)
        takes_context = len(params) == 2
        if takes_context and hints.get(params[1]) is not ProcedureContext:
            raise TypeError(
                f"Procedure {fn.__qualname__}: a second parameter must be annotated "
                f"ProcedureContext (it receives the run's context)"
            )
        in_model = input_model or (hints.get(params[0]) if len(params) in (1, 2) else None)
        out_model = output_model or hints.get("return")
        models: dict[str, type[BaseModel]] = {}
        for label, model in (("input", in_model), ("output", out_model)):
            if not (isinstance(model, type) and issubclass(model, BaseModel)):
                raise TypeError(
                    f"Procedure {fn.__qualname__} needs a pydantic {label} model: annotate "
                    f"{'its first parameter' if label == 'input' else 'its return'} or pass "
                    f"{label}_model="
                )
            models[label] = model
        (registry or _registry).register(
            Procedure(
                name=name or fn.__name__,
                description=description or inspect.getdoc(fn) or "",
                input_model=models["input"],
                output_model=models["output"],
                handler=fn,
                category=category,
                tags=tuple(tags),
                source=f"{fn.__module__}.{fn.__qualname__}",
                takes_context=takes_context,
            )
        )
        return fn

    return decorate
