"""Fill the procedure registry and workflow library at start-up, the way admin finds admin.py.

Order matters: every installed app's `procedures.py` first, then every `workflows.py`, then the
JSON files in settings.C4C_WORKFLOW_DIRS; finally every definition is validated against the
complete registry. Any conflict or invalid definition raises ImproperlyConfigured, so a broken
deployment stops at start-up instead of failing its first run.
"""

from collections.abc import Iterable
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import autodiscover_modules

from .conf import app_settings
from .errors import DuplicateDefinition
from .library import WorkflowLibrary, workflow_library
from .registry import ProcedureRegistry, procedure_registry
from .validation import validate_definition


def discover() -> None:
    try:
        autodiscover_modules("procedures")
        autodiscover_modules("workflows")
    except DuplicateDefinition as exc:
        raise ImproperlyConfigured(str(exc)) from exc
    load_definition_dirs(workflow_library(), procedure_registry(), app_settings.C4C_WORKFLOW_DIRS)


def load_definition_dirs(
    library: WorkflowLibrary, registry: ProcedureRegistry, directories: Iterable[Path | str]
) -> None:
    """Load JSON definitions into `library`, then check every definition it holds."""
    try:
        for directory in directories:
            library.load_directory(Path(directory))
    except (DuplicateDefinition, ValueError) as exc:
        raise ImproperlyConfigured(str(exc)) from exc
    problems = [
        f"Workflow {definition.id} ({library.source(definition.id)}): {error}"
        for definition in library.all()
        for error in validate_definition(definition, registry)
    ]
    if problems:
        raise ImproperlyConfigured("Invalid workflow definitions:\n" + "\n".join(problems))
