"""Workflow definitions as c4c's camelCase JSON, validated by pydantic.

The same models describe code-defined workflows (via the builder) and inline workflows posted by
API clients, so both go through one validator and one engine. Names and ids are bounded by the
columns that store them, and a definition made in code is checked like one a client sends: no
text a database cannot store, no runaway nesting (workflows.limits).
"""

from collections.abc import Callable
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator
from pydantic.alias_generators import to_camel

from .limits import (
    MAX_ID_CHARS,
    MAX_NAME_CHARS,
    MAX_NODE_TYPE_CHARS,
    MAX_PROCEDURE_NAME_CHARS,
    MAX_VERSION_CHARS,
    json_problems,
)
from .retry import MAX_TIMEOUT_MS, RetryPolicy
from .waits import WAIT_NODE_TYPES

NodeType = Literal[
    "procedure", "condition", "parallel", "sequential", "trigger", "sleep", "wait", "subworkflow"
]
# c4c's five, then the nodes that wait without a thread (workflows.waits).
NODE_TYPES: tuple[str, ...] = (
    "procedure",
    "condition",
    "parallel",
    "sequential",
    "trigger",
    *WAIT_NODE_TYPES,
)


class _CamelModel(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
    )

    def to_json_dict(self) -> dict[str, Any]:
        """The c4c JSON shape: camelCase names, unset optional fields left out."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class WorkflowNode(_CamelModel):
    id: str = Field(min_length=1, max_length=MAX_ID_CHARS)
    type: str = Field(max_length=MAX_NODE_TYPE_CHARS)
    procedure_name: str | None = Field(default=None, max_length=MAX_PROCEDURE_NAME_CHARS)
    config: dict[str, Any] = Field(default_factory=dict)
    next: str | list[str] | None = None
    on_error: str | None = Field(default=None, max_length=MAX_ID_CHARS)
    retry: RetryPolicy | None = None
    timeout_ms: int | None = Field(default=None, ge=1, le=MAX_TIMEOUT_MS)
    # A Python predicate for a condition node. Private, so it never comes from (or goes to) JSON:
    # only code-defined workflows (workflows.builder) can set it.
    _predicate: Callable[[Any], Any] | None = PrivateAttr(default=None)

    @field_validator("next")
    @classmethod
    def _bounded_next(cls, value: str | list[str] | None) -> str | list[str] | None:
        """References to nodes are bounded like node ids: problems quote them."""
        targets = [value] if isinstance(value, str) else value or []
        if any(len(target) > MAX_ID_CHARS for target in targets):
            raise ValueError(f"node ids have at most {MAX_ID_CHARS} characters")
        return value

    @property
    def predicate(self) -> Callable[[Any], Any] | None:
        return self._predicate

    @property
    def next_ids(self) -> list[str]:
        if self.next is None:
            return []
        return [self.next] if isinstance(self.next, str) else list(self.next)


class WorkflowDefinition(_CamelModel):
    id: str = Field(min_length=1, max_length=MAX_ID_CHARS)
    name: str = Field(default="", max_length=MAX_NAME_CHARS)
    description: str = ""
    version: str = Field(default="1.0.0", max_length=MAX_VERSION_CHARS)
    start_node: str = Field(max_length=MAX_ID_CHARS)
    nodes: list[WorkflowNode]
    variables: dict[str, Any] = Field(default_factory=dict)
    metadata: dict[str, Any] = Field(default_factory=dict)
    # Every procedure node's retry policy unless it has its own; the whole run's time limit.
    retry: RetryPolicy | None = None
    timeout_ms: int | None = Field(default=None, ge=1, le=MAX_TIMEOUT_MS)

    @model_validator(mode="after")
    def _storable(self) -> Self:
        """Every run stores its definition: text no database holds must not get that far."""
        problems = json_problems(self.to_json_dict(), label="definition")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def to_json_dict(self) -> dict[str, Any]:
        """As c4c writes it: `variables` and `metadata` appear only when they hold something."""
        data = super().to_json_dict()
        for key in ("variables", "metadata"):
            if not data.get(key):
                data.pop(key, None)
        return data

    @property
    def display_name(self) -> str:
        return self.name or self.id

    def node(self, node_id: str) -> WorkflowNode | None:
        return next((n for n in self.nodes if n.id == node_id), None)
