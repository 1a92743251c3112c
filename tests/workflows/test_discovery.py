"""Start-up finds procedures, workflows and JSON files; a duplicate id stops it, naming both."""

import json
from pathlib import Path
from typing import Any

import pytest
from django.apps import apps
from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured

from workflows.builder import Workflow
from workflows.discovery import load_definition_dirs
from workflows.errors import DuplicateDefinition
from workflows.library import WorkflowLibrary, workflow_library
from workflows.registry import procedure_registry


def _write(directory: Path, name: str, definition: dict[str, Any]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(json.dumps(definition))
    return path


def _definition(workflow_id: str, procedure_name: str = "math.add") -> dict[str, Any]:
    return {
        "id": workflow_id,
        "name": workflow_id,
        "startNode": "add",
        "nodes": [
            {
                "id": "add",
                "type": "procedure",
                "procedureName": procedure_name,
                "config": {"a": 1, "b": 2},
            }
        ],
    }


def test_shipped_examples_are_discovered() -> None:
    library = workflow_library()
    ids = {d.id for d in library.all()}
    assert {
        "simple-math-workflow",
        "long-running-workflow",
        "branching-workflow",
        "error-recovery-workflow",
        "failing-workflow",
    } <= ids
    assert library.source("simple-math-workflow") == "module workflows.workflows"
    shipped = Path(
        django_settings.BASE_DIR, "workflow_definitions", "failing-workflow.json"
    ).resolve()
    assert library.source("failing-workflow") == str(shipped)
    assert library.get("nope") is None


def test_same_id_in_two_files_stops_loading_naming_both(tmp_path) -> None:
    first = _write(tmp_path / "one", "a.json", _definition("dup"))
    second = _write(tmp_path / "two", "b.json", _definition("dup"))
    with pytest.raises(ImproperlyConfigured) as caught:
        load_definition_dirs(
            WorkflowLibrary(), procedure_registry(), [tmp_path / "one", tmp_path / "two"]
        )
    assert str(first.resolve()) in str(caught.value)
    assert str(second.resolve()) in str(caught.value)


def test_code_workflow_and_file_with_same_id_conflict(tmp_path) -> None:
    library = WorkflowLibrary()
    library.register(Workflow("dup").procedure("add", "math.add").build(), source="module my.app")
    path = _write(tmp_path, "dup.json", _definition("dup"))
    with pytest.raises(
        DuplicateDefinition, match=r"in module my\.app and in .*dup\.json"
    ) as caught:
        library.load_directory(tmp_path)
    assert str(path.resolve()) in str(caught.value)


def test_startup_with_a_duplicate_of_a_shipped_workflow_fails_naming_both(
    tmp_path, settings
) -> None:
    path = _write(tmp_path, "copy.json", _definition("simple-math-workflow"))
    config = apps.get_app_config("workflows")
    before = workflow_library().get("simple-math-workflow")
    settings.C4C_WORKFLOW_DIRS = [tmp_path]
    with pytest.raises(ImproperlyConfigured) as caught:
        config.ready()
    assert "module workflows.workflows" in str(caught.value)
    assert str(path.resolve()) in str(caught.value)
    assert workflow_library().get("simple-math-workflow") is before


def test_running_discovery_again_is_harmless() -> None:
    before = {d.id for d in workflow_library().all()}
    apps.get_app_config("workflows").ready()
    assert {d.id for d in workflow_library().all()} == before


def test_unreadable_json_file_is_named(tmp_path) -> None:
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(ImproperlyConfigured, match=r"broken.json: not a readable JSON file"):
        load_definition_dirs(WorkflowLibrary(), procedure_registry(), [tmp_path])


def test_file_that_is_not_a_definition_names_the_field(tmp_path) -> None:
    _write(tmp_path, "odd.json", {"id": "odd", "nodes": []})
    with pytest.raises(
        ImproperlyConfigured, match=r"odd.json: not a workflow definition: startNode"
    ):
        load_definition_dirs(WorkflowLibrary(), procedure_registry(), [tmp_path])


def test_definition_with_unknown_procedure_stops_startup(tmp_path) -> None:
    _write(tmp_path, "ghost.json", _definition("ghost", "no.such.proc"))
    with pytest.raises(ImproperlyConfigured) as caught:
        load_definition_dirs(WorkflowLibrary(), procedure_registry(), [tmp_path])
    assert "Workflow ghost" in str(caught.value)
    assert "Node add: procedure no.such.proc not found in registry" in str(caught.value)


def test_missing_directory_holds_no_workflows(tmp_path) -> None:
    library = WorkflowLibrary()
    load_definition_dirs(library, procedure_registry(), [tmp_path / "absent"])
    assert library.all() == []
