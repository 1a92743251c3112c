"""Nodes that wait without holding a thread: sleep, wait (for a signal) and subworkflow.

Their config, as c4c-style camelCase JSON (templates such as `{{input.remindAt}}` are rendered
first, as in a procedure node's config):

- sleep: `{"durationMs": 86400000}` or `{"until": "2026-12-01T09:00:00+01:00"}` (exactly one; an
  ISO time with its offset). Output `{"sleptUntil": <ISO time>}`. The due time is fixed the first
  time the run reaches the node, so a restart wakes it when it was due, not a day later.
- wait: `{"signal": "approval", "timeoutMs": 3600000, "approval": true}`. The node's output is the
  payload of the signal of that name delivered to the execution (POST
  /workflow/executions/<id>/signals/<name>); one delivered before the node waits is kept and taken
  then. Without a signal by `timeoutMs` the node fails with TimeoutError, so its onError branch
  runs. `approval: true` marks it as a person's decision: the dashboard offers Approve / Reject,
  which send `{"approved": true|false, "by": <user>}`.
- subworkflow: `{"workflowId": "simple-math-workflow", "input": {"a": "{{input.a}}"}}`. Starts a
  child execution of that workflow (linked both ways: its `parentExecutionId`, the node's
  `childExecutionId`) and waits for it; the node's output is `{"executionId", "outputs"}` of the
  child, and a failed or cancelled child fails the node (onError applies).

A durable runner (executions.runtime) gives the engine `Waits`: then a node whose moment has not
come parks the run (RunObserver.node_parked; the run ends "waiting") and the runner wakes it from
the database when it is due, or when its signal or child arrives; the walk then replays every
node done so far from its checkpoint and takes the parked node up again. Without one, a sleep
sleeps on the walking thread and the other two fail: they need somewhere to wait from.
"""

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

MAX_WAIT_MS = 366 * 24 * 3600 * 1000
SIGNAL_NAME = re.compile(r"[A-Za-z0-9_.:-]{1,100}")
WAIT_NODE_TYPES: tuple[str, ...] = ("sleep", "wait", "subworkflow")

# What a parked node run waits for: its status while it waits, and the key a wake-up matches.
ParkedStatus = Literal["sleeping", "waiting"]


class WaitConfigError(ValueError):
    """A sleep, wait or subworkflow node's config that cannot be followed."""


@dataclass(frozen=True, slots=True)
class Parked:
    """Why a node run stopped the walk: what it is (sleeping or waiting), until when at most
    (None: until its signal or child comes), and for what ("signal:<name>", "execution:<id>")."""

    status: ParkedStatus
    wake_at: datetime | None
    waiting_for: str = ""


@dataclass(frozen=True, slots=True)
class ChildOutcome:
    """How a child execution ended: its status, its outputs (node id -> output) and its error."""

    execution_id: str
    status: str
    outputs: dict[str, Any]
    error_name: str = ""
    error_message: str = ""


class Waits(Protocol):
    """What a durable runner lends the engine so that waits outlive the walking thread."""

    def take_signal(self, *, node_id: str, visit: int, name: str) -> tuple[bool, Any]:
        """(True, payload) of the oldest signal `name` not yet taken (or the one this node run
        took before a restart), marked taken by it; (False, None) when none has come."""

    def start_child(
        self, *, node_id: str, visit: int, workflow_id: str, input: dict[str, Any]
    ) -> str | None:
        """The child execution of this node run, started now unless it exists; None when the
        runner has no room for it yet (the node then waits a moment and asks again)."""

    def child_outcome(self, execution_id: str) -> ChildOutcome | None:
        """The child's outcome once it has ended; None while it runs or waits."""


def _milliseconds(config: dict[str, Any], key: str, node_id: str) -> int | None:
    value = config.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_WAIT_MS:
        raise WaitConfigError(
            f"Node {node_id}: {key} must be a whole number of milliseconds from 0 to {MAX_WAIT_MS}"
        )
    return value


def _instant(value: Any, node_id: str) -> datetime:
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            moment = None
        if moment is not None and moment.tzinfo is not None:
            return moment.astimezone(UTC)
    raise WaitConfigError(
        f"Node {node_id}: until must be an ISO 8601 time with its offset, such as "
        f"2026-12-01T09:00:00+01:00, not {str(value)[:80]!r}"
    )


def sleep_due(config: dict[str, Any], node_id: str, now: datetime) -> datetime:
    """When a sleep node reached at `now` wakes."""
    duration = _milliseconds(config, "durationMs", node_id)
    until = config.get("until")
    if (duration is None) == (until is None):
        raise WaitConfigError(f"Node {node_id}: sleep needs exactly one of durationMs and until")
    if duration is not None:
        return now + timedelta(milliseconds=duration)
    return _instant(until, node_id)


def signal_name(config: dict[str, Any], node_id: str) -> str:
    name = config.get("signal")
    if not isinstance(name, str) or not SIGNAL_NAME.fullmatch(name):
        raise WaitConfigError(
            f"Node {node_id}: signal must be a name of 1-100 letters, digits or _ . : -"
        )
    return name


def wait_timeout_ms(config: dict[str, Any], node_id: str) -> int | None:
    return _milliseconds(config, "timeoutMs", node_id)


def child_workflow(config: dict[str, Any], node_id: str) -> tuple[str, dict[str, Any]]:
    """The workflow id a subworkflow node runs and the input it gives it."""
    workflow_id = config.get("workflowId")
    if not isinstance(workflow_id, str) or not workflow_id:
        raise WaitConfigError(f"Node {node_id}: subworkflow needs a workflowId")
    child_input = config.get("input", {})
    if not isinstance(child_input, dict):
        raise WaitConfigError(f"Node {node_id}: subworkflow input must be a JSON object")
    return workflow_id, child_input


def config_problems(node_type: str, config: dict[str, Any], node_id: str) -> list[str]:
    """What validation reports for a wait node's config; a templated value is checked when it
    is rendered, at run time."""
    try:
        if node_type == "sleep":
            fixed = {k: v for k, v in config.items() if not _templated(v)}
            if "durationMs" in config or "until" in config:
                if not any(_templated(config.get(k)) for k in ("durationMs", "until")):
                    sleep_due(fixed, node_id, datetime.now(UTC))
            else:
                raise WaitConfigError(
                    f"Node {node_id}: sleep needs exactly one of durationMs and until"
                )
        elif node_type == "wait":
            signal_name(config, node_id)
            if not _templated(config.get("timeoutMs")):
                wait_timeout_ms(config, node_id)
            if not isinstance(config.get("approval", False), bool):
                raise WaitConfigError(f"Node {node_id}: approval must be true or false")
        elif node_type == "subworkflow":
            child_workflow(config, node_id)
    except WaitConfigError as exc:
        return [str(exc)]
    return []


def _templated(value: Any) -> bool:
    return isinstance(value, str) and "{{" in value
