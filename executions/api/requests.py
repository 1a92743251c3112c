"""The API's request bodies and query strings as pydantic models: first-class error messages."""

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar, cast

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from workflows.limits import MAX_ID_CHARS

from ..cursors import BadPosition, Position, decode_cursor, storable_time
from ..filters import MAX_DURATION_MS, FilterError, parse_where, with_durations
from ..models import Execution, ExecutionFilters, ListShape

_T = TypeVar("_T")
_R = TypeVar("_R")

EXECUTION_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,199}$"
# Ids that name a path of the API rather than a run (/workflow/executions/bulk).
RESERVED_EXECUTION_IDS = frozenset({"bulk"})


class BadRequest(Exception):
    def __init__(self, message: str, errors: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors or [message]


def error_lines(exc: ValidationError) -> list[str]:
    """'field: message' for every problem, so a client fixes them all in one go."""
    lines = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"]) or "body"
        lines.append(f"{where}: {error['msg']}")
    return lines


def parse(model: type[BaseModel], data: Any) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        lines = error_lines(exc)
        raise BadRequest("; ".join(lines), lines) from exc


class ExecuteOptions(BaseModel):
    """c4c's `options`: its UI names the run here (`{"options": {"executionId": ...}}`)."""

    model_config = ConfigDict(populate_by_name=True, extra="allow")

    execution_id: str | None = Field(
        default=None, alias="executionId", pattern=EXECUTION_ID_PATTERN
    )


class ExecuteRequest(BaseModel):
    """POST /workflow/execute as c4c's server reads it: keys it does not know are ignored, not
    refused (c4c's UI sends some), and listed in the answer's `ignoredKeys`. A known key of the
    wrong type is still a 400: that is a mistake, not an extension.
    """

    model_config = ConfigDict(populate_by_name=True, extra="allow")

    workflow_id: str | None = Field(default=None, alias="workflowId", min_length=1)
    workflow: dict[str, Any] | None = None
    input: dict[str, Any] = Field(default_factory=dict)
    execution_id: str | None = Field(
        default=None, alias="executionId", pattern=EXECUTION_ID_PATTERN
    )
    run_async: bool = Field(default=False, alias="async")
    # Inlined in the OpenAPI document (its request bodies hold no $defs), generated all the same.
    options: Annotated[
        ExecuteOptions, WithJsonSchema(ExecuteOptions.model_json_schema(by_alias=True))
    ] = Field(default_factory=ExecuteOptions)

    @model_validator(mode="after")
    def _one_execution_id(self) -> "ExecuteRequest":
        given, option = self.execution_id, self.options.execution_id
        if given is not None and option is not None and given != option:
            raise PydanticCustomError(
                "value_error",
                "executionId '{given}' and options.executionId '{option}' differ: "
                "name the run once",
                {"given": given, "option": option},
            )
        if self.run_id in RESERVED_EXECUTION_IDS:
            raise PydanticCustomError(
                "value_error",
                "executionId '{given}' is reserved: /workflow/executions/{given} is the path of "
                "bulk actions, so no run could be read there",
                {"given": self.run_id},
            )
        return self

    @property
    def run_id(self) -> str | None:
        """The id the client chose for the run (top level or in options), or None."""
        return self.execution_id or self.options.execution_id

    @property
    def ignored_keys(self) -> list[str]:
        """Keys of the body this server does not read, options' as `options.<key>`."""
        return [
            *(self.model_extra or {}),
            *(f"options.{k}" for k in self.options.model_extra or {}),
        ]


WHERE_DESCRIPTION = (
    "Conditions on a value inside the input or outputs, all AND-ed (repeat the parameter, or "
    "join them with `and`): `<source>.<path> <op> <JSON value>`. Sources: `input`; `output` - "
    "any node's output (`output.customer.country` matches when some node's output has that "
    "value there); `outputs.<nodeId>` - that node's output. Path: `.key` segments or "
    '`["any key"]`. Operators: `=`, `!=` (exactly the negation of `=`: a run without the key '
    "matches), `<`, `<=`, `>`, `>=` (numbers only). Values: JSON literals - 4711, 12.5, "
    '"DE", true, false, null; `=` compares JSON type and value (4711 = 4711.0; true is not 1). '
    'Examples: `input.orderId = 4711`, `output.customer.country = "DE"`, '
    "`outputs.charge.amount >= 100`. A malformed condition is a 400 naming it."
)


class FilterBody(BaseModel):
    """A filter over executions: GET /workflow/executions' query parameters, and a bulk
    action's `filter` object. All given conditions are AND-ed (executions.filters).

    A time without an offset is read as UTC.
    """

    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    status: list[Literal["running", "completed", "failed", "cancelled", "waiting"]] = Field(
        default_factory=list, description="Any of these statuses (repeated or comma-separated)."
    )
    workflow_id: str | None = Field(default=None, alias="workflowId")
    started_after: datetime | None = Field(
        default=None, alias="startedAfter", description="Started after this time (exclusive)."
    )
    started_before: datetime | None = Field(
        default=None, alias="startedBefore", description="Started before this time (exclusive)."
    )
    min_duration: int | None = Field(
        default=None,
        alias="minDuration",
        ge=0,
        le=MAX_DURATION_MS,
        description="Took at least this many ms (a run still going has no duration).",
    )
    max_duration: int | None = Field(
        default=None,
        alias="maxDuration",
        ge=0,
        le=MAX_DURATION_MS,
        description="Took at most this many ms (a run still going has no duration).",
    )
    where: list[str] = Field(default_factory=list, description=WHERE_DESCRIPTION)

    @field_validator("status", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [value]
        if isinstance(value, list):
            return [s for v in value for s in str(v).split(",") if s]
        return value

    @field_validator("where", mode="before")
    @classmethod
    def _listed(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("where")
    @classmethod
    def _readable(cls, value: list[str]) -> list[str]:
        try:
            parse_where(value)
        except FilterError as exc:
            raise PydanticCustomError("value_error", exc.problem) from None
        return value

    @field_validator("started_after", "started_before")
    @classmethod
    def _storable(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        if value is None:
            return None
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        return _checked(storable_time, aware, info)

    def filters(self) -> ExecutionFilters:
        """The filters (BadRequest for a duration range whose ends are the wrong way round)."""
        selected = ExecutionFilters(
            statuses=tuple(dict.fromkeys(self.status)),
            workflow_id=self.workflow_id or "",
            started_after=self.started_after,
            started_before=self.started_before,
            values=parse_where(self.where),
        )
        try:
            return with_durations(selected, self.min_duration, self.max_duration)
        except FilterError as exc:
            raise BadRequest(str(exc)) from None


class ListQuery(FilterBody):
    """GET /workflow/executions. The default page (`fields=list`) carries what a list shows -
    each execution's id, workflow, status, times and nodesExecuted - and reads only those
    columns; `fields=summary` adds the outputs, error and node details (each node's input and
    output), `fields=full` the spans too.

    A cursor must be one this server returned, and `offset` skips rows after it.
    """

    limit: int = Field(default=50, ge=1, le=200)
    fields: Literal["list", "summary", "full"] = "list"
    offset: int = Field(default=0, ge=0, le=1_000_000)
    cursor: str | None = None

    @field_validator("cursor")
    @classmethod
    def _decodable(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None:
            _checked(decode_cursor, value, info)
        return value

    def shape(self) -> ListShape:
        """What the page reads per execution (models.ListShape) for these `fields`."""
        return "row" if self.fields == "list" else self.fields

    def position(self) -> Position | None:
        """The row the cursor points at: the page starts after it."""
        return None if self.cursor is None else decode_cursor(self.cursor, "cursor")


# The most runs a bulk action may name one by one (a page of the list is at most 200).
MAX_BULK_IDS = 1_000
ExecutionIds = Annotated[
    list[Annotated[str, Field(min_length=1, max_length=MAX_ID_CHARS)]],
    Field(min_length=1, max_length=MAX_BULK_IDS),
]


class BulkCountQuery(FilterBody):
    """GET /workflow/executions/bulk/count: what a bulk action would act on, and the token that
    confirms it. The runs are the filter's (the list's parameters), or `executionId` repeated."""

    action: Literal["cancel", "rerun"]
    execution_ids: ExecutionIds | None = Field(
        default=None, alias="executionId", description="These runs (repeated), not a filter."
    )

    @model_validator(mode="after")
    def _ids_or_filter(self) -> "BulkCountQuery":
        if self.execution_ids is not None and self.model_dump(
            exclude={"action", "execution_ids"}, exclude_defaults=True
        ):
            raise PydanticCustomError(
                "value_error", "give either executionId or filter parameters, not both"
            )
        return self

    def selection(self) -> ExecutionFilters:
        if self.execution_ids is not None:
            return ExecutionFilters(execution_ids=tuple(dict.fromkeys(self.execution_ids)))
        return self.filters()


class BulkRequest(BaseModel):
    """POST /workflow/executions/bulk: act on the runs counted, if they are still those."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    action: Literal["cancel", "rerun"]
    # Inlined in the OpenAPI document (its request bodies hold no $defs), generated all the same.
    filter: (
        Annotated[FilterBody, WithJsonSchema(FilterBody.model_json_schema(by_alias=True))] | None
    ) = Field(default=None, description="The runs matching this filter (as the list's parameters).")
    execution_ids: ExecutionIds | None = Field(
        default=None, alias="executionIds", description="These runs, not a filter."
    )
    expect: str = Field(
        min_length=1,
        max_length=64,
        description="The `expect` token of GET /workflow/executions/bulk/count for the same "
        "action and runs: if they changed since (409), nothing is done.",
    )

    @model_validator(mode="after")
    def _ids_or_filter(self) -> "BulkRequest":
        if (self.filter is None) == (self.execution_ids is None):
            raise PydanticCustomError("value_error", "give either filter or executionIds")
        return self

    def selection(self) -> ExecutionFilters:
        if self.execution_ids is not None:
            return ExecutionFilters(execution_ids=tuple(dict.fromkeys(self.execution_ids)))
        return (self.filter or FilterBody()).filters()


def _checked(check: Callable[[_T, str], _R], value: _T, info: ValidationInfo) -> _R:
    """`check(value, name)`, its refusal as a pydantic error whose message does not repeat the
    parameter's name (error_lines puts it in front)."""
    try:
        return check(value, info.field_name or "")
    except BadPosition as exc:
        raise PydanticCustomError("value_error", exc.problem) from None


class RerunRequest(BaseModel):
    """POST /workflow/executions/<id>/rerun (the body is optional: no body runs from the start)."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    from_node: str | None = Field(
        default=None,
        alias="fromNode",
        min_length=1,
        max_length=MAX_ID_CHARS,
        description="Run from this node: the original's outputs of the nodes before it are "
        "reused, not run. It must be a node the original reached.",
    )


IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"
# As long as the column that keeps it.
IDEMPOTENCY_KEY_MAX_CHARS = cast(int, Execution._meta.get_field("idempotency_key").max_length)
# Printable ASCII, no space at either end (HTTP strips it): a key is an opaque token, and one a
# log line, a header and a database column all hold as it is.
_IDEMPOTENCY_KEY = re.compile(r"[!-~](?:[ -~]*[!-~])?")


def idempotency_key(value: str | None) -> str | None:
    """The Idempotency-Key header's value, or None when it was not sent; BadRequest if unusable."""
    if value is None:
        return None
    if not value:
        raise BadRequest(f"{IDEMPOTENCY_KEY_HEADER} must not be empty")
    if len(value) > IDEMPOTENCY_KEY_MAX_CHARS:
        raise BadRequest(
            f"{IDEMPOTENCY_KEY_HEADER} is {len(value)} characters long; "
            f"at most {IDEMPOTENCY_KEY_MAX_CHARS} are kept"
        )
    if not _IDEMPOTENCY_KEY.fullmatch(value):
        raise BadRequest(
            f"{IDEMPOTENCY_KEY_HEADER} must be printable ASCII with no space at either end"
        )
    return value
