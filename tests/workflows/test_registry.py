"""Procedures carry pydantic contracts; names default from the function; duplicates are refused."""

import pytest
from pydantic import BaseModel

from workflows.errors import DuplicateDefinition, ProcedureInputError, ProcedureOutputError
from workflows.registry import ProcedureRegistry, procedure, procedure_registry


class In(BaseModel):
    x: int


class Out(BaseModel):
    y: int


def test_models_come_from_type_hints_and_name_from_the_function() -> None:
    registry = ProcedureRegistry()

    @procedure(registry=registry, category="demo", tags=["a", "b"])
    def double_it(data: In) -> Out:
        """Double x."""
        return Out(y=data.x * 2)

    proc = registry.get("double_it")
    assert proc is not None
    assert (proc.input_model, proc.output_model) == (In, Out)
    assert (proc.description, proc.category, proc.tags) == ("Double x.", "demo", ("a", "b"))
    assert proc.invoke({"x": 4, "ignored": True}) == {"y": 8}
    assert double_it(In(x=1)) == Out(y=2)


def test_explicit_name_and_models() -> None:
    registry = ProcedureRegistry()

    @procedure("demo.raw", registry=registry, input_model=In, output_model=Out)
    def raw(data):
        return {"y": data.x}

    raw_proc = registry.get("demo.raw")
    assert raw_proc is not None
    assert raw_proc.invoke({"x": 3}) == {"y": 3}
    assert "demo.raw" in registry


def test_contract_errors_name_the_field() -> None:
    registry = ProcedureRegistry()

    @procedure("demo.wrong", registry=registry)
    def wrong(data: In) -> Out:
        return {"z": 1}  # type: ignore[return-value]

    proc = registry.get("demo.wrong")
    assert proc is not None
    with pytest.raises(ProcedureInputError, match=r"^Input to demo.wrong is invalid: x: "):
        proc.invoke({"x": "many"})
    with pytest.raises(
        ProcedureOutputError, match=r"^Output of demo.wrong is invalid: y: Field required"
    ):
        proc.invoke({"x": 1})


def test_async_handler_is_detected_and_awaited() -> None:
    registry = ProcedureRegistry()

    @procedure("demo.async", registry=registry)
    async def later(data: In) -> Out:
        return Out(y=data.x + 1)

    proc = registry.get("demo.async")
    assert proc is not None
    assert proc.is_async
    assert proc.invoke({"x": 1}) == {"y": 2}


def test_function_without_models_is_refused() -> None:
    with pytest.raises(TypeError, match="needs a pydantic input model"):

        @procedure(registry=ProcedureRegistry())
        def untyped(data):
            return data


def test_same_name_from_two_places_is_refused_naming_both() -> None:
    registry = ProcedureRegistry()

    @procedure("demo.twice", registry=registry)
    def first(data: In) -> Out:
        return Out(y=1)

    with pytest.raises(DuplicateDefinition) as caught:

        @procedure("demo.twice", registry=registry)
        def second(data: In) -> Out:
            return Out(y=2)

    message = str(caught.value)
    assert "demo.twice" in message
    assert "first" in message
    assert "second" in message


def test_examples_expose_what_pages_show() -> None:
    names = [p.name for p in procedure_registry().all()]
    for name in (
        "math.add",
        "math.multiply",
        "math.subtract",
        "custom.log",
        "custom.delay",
        "data.fetch",
    ):
        assert name in names
    add = procedure_registry().get("math.add")
    assert add is not None
    assert add.category == "math"
    assert add.input_model.model_json_schema()["properties"]["a"] == {
        "title": "A",
        "type": "number",
    }
