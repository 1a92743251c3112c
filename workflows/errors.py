"""Failures the engine turns into a failed node or a failed run, and readable pydantic messages.

Every error raised on purpose by the engine derives from WorkflowError so that a failed node reads
as a clear sentence ("Node add: input to math.add is invalid: a: Input should be ...") instead of a
crash with a traceback.
"""

from pydantic import ValidationError


class WorkflowError(Exception):
    """A problem in a workflow run that fails the node (or the run) with its message."""


class ProcedureNotFound(WorkflowError):
    pass


class ProcedureInputError(WorkflowError):
    pass


class ProcedureOutputError(WorkflowError):
    pass


class ExpressionError(WorkflowError):
    pass


class TemplateError(WorkflowError):
    pass


class ParallelBranchError(WorkflowError):
    pass


class MaxStepsExceeded(WorkflowError):
    """Stops a run that loops too long; it fails the run, never an onError handler."""


class NodeNotFound(WorkflowError):
    pass


class SubworkflowFailed(WorkflowError):
    """A subworkflow node's child execution failed or was cancelled."""


class CancelledError(WorkflowError):
    """The run's owner cancelled it (RunControl.cancel): the run ends cancelled, not in onError."""


class DuplicateDefinition(Exception):
    """Two places define the same procedure name or workflow id."""


def validation_messages(exc: ValidationError) -> list[str]:
    """One "field.path: message" line per pydantic error, so a client sees which field is wrong."""
    messages = []
    for error in exc.errors(include_url=False):
        location = ".".join(str(part) for part in error["loc"])
        messages.append(f"{location}: {error['msg']}" if location else error["msg"])
    return messages
