"""Workflow definitions as c4c's camelCase JSON, validated by pydantic.

The same models describe code-defined workflows (via the builder) and inline workflows posted by
API clients, so both go through one validator and one engine.
"""

from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr
from pydantic.alias_generators import to_camel

NodeType = Literal["procedure", "condition", "parallel", "sequential", "trigger"]
NODE_TYPES: tuple[str, ...] = ("procedure", "condition", "parallel", "sequential", "trigger")


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
    id: str = Field(min_length=1, max_length=200)
    type: str
    procedure_name: str | None = None
    config: dict[str, Any] = Field(default_factory=dict)
    next: str | list[str] | None = None
    on_error: str | None = None
    # A Python predicate for a condition node. Private, so it never comes from (or goes to) JSON:
    # only code-defined workflows (workflows.builder) can set it.
    _predicate: Callable[[Any], Any] | None = PrivateAttr(default=None)

    @property
    def predicate(self) -> Callable[[Any], Any] | None:
        return self._predicate

    @property
    def next_ids(self) -> list[str]:
        if self.next is None:
            return []
        return [self.next] if isinstance(self.next, str) else list(self.next)


class WorkflowDefinition(_CamelModel):
    id: str = Field(min_length=1, max_length=200)
    name: str = ""
    description: str = ""
    version: str = "1.0.0"
    start_node: str
    nodes: list[WorkflowNode]
    variables: dict[str, Any] = Field(default_factory=dict)
    metadata: dict[str, Any] = Field(default_factory=dict)

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
