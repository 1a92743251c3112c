"""The workflows this process can run by id: code-defined ones and JSON definition files.

Each definition remembers where it came from (a module, or a file path), so that two places
defining the same id stop start-up with an error naming both, instead of one silently winning.
Registering the same id again from the same place replaces it (re-running discovery is harmless).
"""

import json
import sys
import threading
from pathlib import Path

from pydantic import ValidationError

from .definitions import WorkflowDefinition
from .errors import DuplicateDefinition, validation_messages


class WorkflowLibrary:
    def __init__(self) -> None:
        self._definitions: dict[str, tuple[WorkflowDefinition, str]] = {}
        self._lock = threading.Lock()

    def register(self, definition: WorkflowDefinition, *, source: str) -> WorkflowDefinition:
        with self._lock:
            existing = self._definitions.get(definition.id)
            if existing is not None and existing[1] != source:
                raise DuplicateDefinition(
                    f"Workflow {definition.id!r} is defined twice: in {existing[1]} and in {source}"
                )
            self._definitions[definition.id] = (definition, source)
        return definition

    def get(self, workflow_id: str) -> WorkflowDefinition | None:
        entry = self._definitions.get(workflow_id)
        return entry[0] if entry else None

    def source(self, workflow_id: str) -> str | None:
        entry = self._definitions.get(workflow_id)
        return entry[1] if entry else None

    def all(self) -> list[WorkflowDefinition]:
        return sorted((d for d, _ in self._definitions.values()), key=lambda d: d.id)

    def load_directory(self, directory: Path) -> list[WorkflowDefinition]:
        """Register every `*.json` definition in `directory` (sorted, not recursive).

        A file that is not valid JSON or not a definition raises ValueError naming the file; a
        missing directory holds no workflows. Unknown procedures are checked later, once every
        app's procedures are registered.
        """
        if not directory.is_dir():
            return []
        loaded = []
        for path in sorted(directory.glob("*.json")):
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise ValueError(f"{path}: not a readable JSON file: {exc}") from exc
            try:
                definition = WorkflowDefinition.model_validate(data)
            except ValidationError as exc:
                problems = "; ".join(validation_messages(exc))
                raise ValueError(f"{path}: not a workflow definition: {problems}") from exc
            loaded.append(self.register(definition, source=str(path.resolve())))
        return loaded


_library = WorkflowLibrary()


def workflow_library() -> WorkflowLibrary:
    """The process-wide library filled at start-up (see workflows.discovery)."""
    return _library


def register_workflow(
    definition: WorkflowDefinition, *, source: str | None = None
) -> WorkflowDefinition:
    """Add a code-defined workflow to the global library; call it from an app's `workflows.py`.

    The source defaults to the calling module's name, which is what a duplicate-id error names.
    """
    caller = source or sys._getframe(1).f_globals.get("__name__", "<unknown module>")
    return _library.register(definition, source=f"module {caller}")
