"""What a previous run recorded per node run, so that a new run can continue from it.

A node's stored result is its checkpoint (DBOS's idea, in our data model). A node run is keyed by
(node id, visit): the visit is the nth time the walk reached that node, so a loop that passes
through a node twice has two checkpoints for it, and a replay that walks the same way finds each.

- completed: the node's output. Not run again: the walk follows it (a condition's stored
  `branch`, any other node's `next`), and procedure and trigger outputs feed the variables and
  templates as when they ran.
- failed: a node that failed for good (after its retries), with its error. Not run again: the
  walk goes to its onError handler with `error` set, or the run (or branch) fails as it did.
- running: attempt `attempt` was in flight when its process died. Runs again as attempt+1.
- waiting: attempt `attempt` failed and attempt+1 was due at `retry_at`. The run waits what is
  left of that, then runs attempt+1.
- parked: a sleep, wait or subworkflow node (workflows.waits) that stopped the walk: `wake_at`
  is its due time (a sleep's end, a wait's timeout; None for none) and `waiting_for` what it
  waits for. The node takes up its wait again: no new attempt, the same due time.

`reused` marks a completed (or failed) checkpoint copied from another execution ("re-run from
node X"): the engine reports it through the observer's node_reused, so it can be recorded as
reused rather than run. A parallel node is never skipped whole: its branches are walked again and
each branch node resolves from its own checkpoint, since the branches' outputs make the variables.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from .observer import ErrorInfo

CheckpointStatus = Literal["completed", "failed", "running", "waiting", "parked"]
CHECKPOINT_STATUSES: tuple[str, ...] = ("completed", "failed", "running", "waiting", "parked")
DONE: frozenset[str] = frozenset({"completed", "failed"})


@dataclass(frozen=True, slots=True)
class Checkpoint:
    node_id: str
    status: CheckpointStatus
    visit: int = 1
    output: Any = None
    error: ErrorInfo | None = None
    attempt: int = 1
    retry_at: datetime | None = None
    reused: bool = False
    wake_at: datetime | None = None
    waiting_for: str = ""

    @property
    def key(self) -> tuple[str, int]:
        return (self.node_id, self.visit)


def index_checkpoints(checkpoints: Iterable[Checkpoint]) -> dict[tuple[str, int], Checkpoint]:
    """Checkpoints by (node id, visit); ValueError for one the engine could not follow."""
    indexed: dict[tuple[str, int], Checkpoint] = {}
    for checkpoint in checkpoints:
        problem = _problem(checkpoint)
        if problem is None and checkpoint.key in indexed:
            problem = "given twice"
        if problem is not None:
            raise ValueError(f"Checkpoint {checkpoint.node_id}#{checkpoint.visit}: {problem}")
        indexed[checkpoint.key] = checkpoint
    return indexed


def _problem(checkpoint: Checkpoint) -> str | None:
    if checkpoint.status not in CHECKPOINT_STATUSES:
        return f"unknown status {checkpoint.status!r}"
    if checkpoint.visit < 1 or checkpoint.attempt < 1:
        return "visit and attempt count from 1"
    if checkpoint.status == "failed" and checkpoint.error is None:
        return "a failed checkpoint needs its error"
    if checkpoint.status == "waiting" and checkpoint.retry_at is None:
        return "a waiting checkpoint needs retry_at"
    if checkpoint.reused and checkpoint.status not in DONE:
        return "only a completed or failed node can be reused"
    return None
