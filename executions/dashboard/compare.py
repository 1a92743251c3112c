"""Two runs side by side: the compare page's model, built from rows already read (no queries).

Nodes are matched by id and visit (a loop's second pass through a node is matched with the other
run's second pass), so runs of different definition versions compare: a node defined in one
version only is shown as such, and one that ran in one run only as such. For each pair: each
side's status, duration and place on one shared time axis (each run measured from its own start),
and structural diffs (jsondiff) of its input, output and error.

One `Budget` is spent by every diff of the page, so two runs of a thousand nodes with large
payloads cost a bounded amount of work and HTML; a diff past it ends with a line saying so.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from ..models import Execution, ExecutionRows, ExecutionStatus, NodeExecution, NodeStatus
from .jsondiff import ABSENT, Budget, JsonDiff, diff_json
from .timeline import Tick, time_axis

Side = Literal["A", "B"]
ABSENT_STATE = "absent"  # the node is not in this run's definition

# Lines and values one diff may spend, and the whole page.
DIFF_LINES = 200
DIFF_VISITS = 5_000
PAGE_LINES = 3_000
PAGE_VISITS = 100_000
_MIN_BAR_PCT = 0.4
MINUS = "\u2212"  # the typographic minus sign, as wide as the plus


@dataclass(frozen=True, slots=True)
class Bar:
    """A span of time on the shared axis, in percent of it."""

    offset_pct: float
    width_pct: float
    open: bool  # still running: it ends at "now"


@dataclass(frozen=True, slots=True)
class NodeSide:
    """One run's part of a node pair: its run of the node (None if it did not run) and state."""

    state: str  # a NodeStatus value, or ABSENT_STATE
    run: NodeExecution | None
    bar: Bar | None

    @property
    def ran(self) -> bool:
        return self.run is not None

    @property
    def duration_ms(self) -> float | None:
        return self.run.duration_ms if self.run is not None else None


@dataclass(frozen=True, slots=True)
class NodePair:
    node_id: str
    visit: int
    node_type: str
    a: NodeSide
    b: NodeSide
    input: JsonDiff
    output: JsonDiff
    error: JsonDiff
    differences: tuple[str, ...]

    @property
    def differs(self) -> bool:
        return bool(self.differences)

    @property
    def delta_ms(self) -> float | None:
        """B's duration minus A's, when both ran and ended."""
        a, b = self.a.duration_ms, self.b.duration_ms
        return None if a is None or b is None else b - a

    @property
    def delta_sign(self) -> str:
        delta = self.delta_ms
        return "" if delta is None else (MINUS if delta < 0 else "+")

    @property
    def delta_abs_ms(self) -> float | None:
        delta = self.delta_ms
        return None if delta is None else abs(delta)


@dataclass(frozen=True, slots=True)
class RunSide:
    letter: Side
    execution: Execution
    ms: float  # how long it took, or has been running
    bar: Bar


@dataclass(frozen=True, slots=True)
class RunComparison:
    a: RunSide
    b: RunSide
    input: JsonDiff
    error: JsonDiff
    nodes: list[NodePair]
    total_ms: float
    axis: list[Tick]

    @property
    def differing(self) -> list[NodePair]:
        return [pair for pair in self.nodes if pair.differs]

    @property
    def runs(self) -> tuple[RunSide, RunSide]:
        return self.a, self.b

    @property
    def same_workflow(self) -> bool:
        return self.a.execution.workflow_id == self.b.execution.workflow_id

    @property
    def same_version(self) -> bool:
        a, b = self.a.execution, self.b.execution
        return self.same_workflow and a.workflow_version == b.workflow_version

    @property
    def cut(self) -> bool:
        """Whether some diff on the page was cut short by the budget."""
        diffs = [self.input, self.error]
        diffs += [d for pair in self.nodes for d in (pair.input, pair.output, pair.error)]
        return any(diff.cut for diff in diffs)


def compare_runs(a: ExecutionRows, b: ExecutionRows, *, now: datetime) -> RunComparison:
    """Everything the compare page shows of two runs (the same run twice is fine)."""
    budget = Budget(visits=PAGE_VISITS, lines=PAGE_LINES)
    a_ms, b_ms = run_ms(a.execution, now), run_ms(b.execution, now)
    total = max(a_ms, b_ms, _last_node_end_ms(a, now), _last_node_end_ms(b, now), 1.0)
    types = {**_node_types(b.execution.definition), **_node_types(a.execution.definition)}
    a_runs, b_runs = _runs_by_visit(a.nodes), _runs_by_visit(b.nodes)
    a_defined, b_defined = _defined_ids(a), _defined_ids(b)
    pairs = []
    for node_id in merged_order(a_defined, b_defined):
        visits = max(len(a_runs.get(node_id, ())), len(b_runs.get(node_id, ())), 1)
        for visit in range(1, visits + 1):
            a_run = _nth(a_runs.get(node_id, ()), visit)
            b_run = _nth(b_runs.get(node_id, ()), visit)
            a_side = _side(a, a_run, node_id in a_defined, total, now)
            b_side = _side(b, b_run, node_id in b_defined, total, now)
            a_value = _payloads(a_run)
            b_value = _payloads(b_run)
            input_diff = _diff(a_value[0], b_value[0], budget)
            output_diff = _diff(a_value[1], b_value[1], budget)
            error_diff = _diff(a_value[2], b_value[2], budget)
            pairs.append(
                NodePair(
                    node_id=node_id,
                    visit=visit,
                    node_type=types.get(node_id, a_run.node_type if a_run else ""),
                    a=a_side,
                    b=b_side,
                    input=input_diff,
                    output=output_diff,
                    error=error_diff,
                    differences=_differences(a_side, b_side, input_diff, output_diff, error_diff),
                )
            )
    return RunComparison(
        a=_run_side("A", a.execution, a_ms, total),
        b=_run_side("B", b.execution, b_ms, total),
        input=_diff(a.execution.input, b.execution.input, budget),
        error=_diff(_present(a.execution.error), _present(b.execution.error), budget),
        nodes=pairs,
        total_ms=total,
        axis=time_axis(total),
    )


def _run_side(letter: Side, execution: Execution, ms: float, total: float) -> RunSide:
    running = execution.status == ExecutionStatus.RUNNING
    return RunSide(letter, execution, ms, _bar(0.0, ms, total, open=running))


def run_ms(execution: Execution, now: datetime) -> float:
    """How long the run took, or has been running."""
    if execution.execution_time_ms is not None:
        return float(execution.execution_time_ms)
    end = execution.ended_at or now
    return max((end - execution.started_at).total_seconds() * 1000, 0.0)


def merged_order(first: Sequence[str], second: Sequence[str]) -> list[str]:
    """`first`, with each id only in `second` placed after the id it follows there and after
    the ids only in `first` that follow that one (a replaced node reads old, then new; at the
    front if none of its predecessors is in `first`): both orders read as the workflow does."""
    merged = list(first)
    seen, in_second = set(merged), set(second)
    position = 0  # where the next id only in `second` goes
    for node_id in second:
        if node_id in seen:
            position = merged.index(node_id) + 1
            continue
        while position < len(merged) and merged[position] not in in_second:
            position += 1
        merged.insert(position, node_id)
        seen.add(node_id)
        position += 1
    return merged


def _defined_ids(rows: ExecutionRows) -> list[str]:
    """The node ids of the run's definition in their order, then any that ran and are not in it."""
    ids = list(_node_types(rows.execution.definition))
    known = set(ids)
    for node in rows.nodes:
        if node.node_id not in known:
            ids.append(node.node_id)
            known.add(node.node_id)
    return ids


def _node_types(definition: Any) -> dict[str, str]:
    nodes = definition.get("nodes") if isinstance(definition, dict) else None
    return {
        node["id"]: str(node.get("type", ""))
        for node in (nodes if isinstance(nodes, list) else [])
        if isinstance(node, dict) and isinstance(node.get("id"), str)
    }


def _runs_by_visit(nodes: Iterable[NodeExecution]) -> dict[str, list[NodeExecution]]:
    runs: dict[str, list[NodeExecution]] = {}
    for node in sorted(nodes, key=lambda n: n.visit):
        runs.setdefault(node.node_id, []).append(node)
    return runs


def _nth(runs: Sequence[NodeExecution], visit: int) -> NodeExecution | None:
    return runs[visit - 1] if visit <= len(runs) else None


def _side(
    rows: ExecutionRows, run: NodeExecution | None, defined: bool, total: float, now: datetime
) -> NodeSide:
    if run is not None:
        return NodeSide(state=run.status, run=run, bar=_node_bar(rows.execution, run, total, now))
    if not defined:
        return NodeSide(state=ABSENT_STATE, run=None, bar=None)
    # Not reached: pending while the run goes on, skipped (a branch not taken) once it ended.
    running = rows.execution.status == ExecutionStatus.RUNNING
    return NodeSide(state=NodeStatus.PENDING if running else NodeStatus.SKIPPED, run=None, bar=None)


def _node_bar(execution: Execution, run: NodeExecution, total: float, now: datetime) -> Bar | None:
    if run.started_at is None:
        return None
    start = (run.started_at - execution.started_at).total_seconds() * 1000
    end_at = run.ended_at or (
        now if execution.status == ExecutionStatus.RUNNING else execution.ended_at or now
    )
    end = (end_at - execution.started_at).total_seconds() * 1000
    return _bar(start, end, total, open=run.ended_at is None)


def _bar(start_ms: float, end_ms: float, total: float, *, open: bool) -> Bar:
    offset = min(max(start_ms / total * 100, 0.0), 100 - _MIN_BAR_PCT)
    width = max(min((end_ms - start_ms) / total * 100, 100 - offset), _MIN_BAR_PCT)
    return Bar(offset_pct=round(offset, 3), width_pct=round(width, 3), open=open)


def _last_node_end_ms(rows: ExecutionRows, now: datetime) -> float:
    started = rows.execution.started_at
    ends = [
        ((node.ended_at or now) - started).total_seconds() * 1000
        for node in rows.nodes
        if node.started_at is not None
        and (node.ended_at is not None or rows.execution.status == ExecutionStatus.RUNNING)
    ]
    return max(ends, default=0.0)


def _present(value: Any) -> Any:
    """A stored null (no input recorded, no error) as no value at all."""
    return ABSENT if value is None else value


def _payloads(run: NodeExecution | None) -> tuple[Any, Any, Any]:
    if run is None:
        return ABSENT, ABSENT, ABSENT
    return _present(run.input), _present(run.output), _present(run.error)


def _diff(a: Any, b: Any, page: Budget) -> JsonDiff:
    """One diff within its own caps and what the page has left; the page pays what it spent."""
    mine = Budget(visits=min(page.visits, DIFF_VISITS), lines=min(page.lines, DIFF_LINES))
    visits, lines = mine.visits, mine.lines
    diff = diff_json(a, b, mine)
    page.visits -= visits - mine.visits
    page.lines -= lines - mine.lines
    return diff


def _differences(
    a: NodeSide, b: NodeSide, input: JsonDiff, output: JsonDiff, error: JsonDiff
) -> tuple[str, ...]:
    """What differs about a node, in words the page shows: presence first, then the rest."""
    for side, this, other in (("A", a, b), ("B", b, a)):
        if this.state != ABSENT_STATE and other.state == ABSENT_STATE:
            return (f"only in {side}'s definition",)
    for side, this, other in (("A", a, b), ("B", b, a)):
        if this.ran and not other.ran:
            return (f"ran only in {side}",)
    found = []
    if a.state != b.state:
        found.append("status")
    for name, diff in (("input", input), ("output", output), ("error", error)):
        if not diff.same:
            found.append(name)
    return tuple(found)
