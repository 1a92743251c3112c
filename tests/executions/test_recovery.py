"""Start-up recovery: a web server or Celery node fails only its own stopped processes' runs."""

import json
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
from django_eventstream.utils import get_storage

from c4c_site.celery import worker_identity
from executions import startup, store
from executions.live import events
from executions.models import Execution, ExecutionCounter
from tests import factories

pytestmark = pytest.mark.django_db

NEVER_A_PID = 4_194_305  # above Linux's largest pid_max: no process can have it


@pytest.fixture
def live_pid() -> Iterator[int]:
    """A process that is alive for the whole test (a sibling sharing our server name)."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        yield process.pid
    finally:
        process.kill()
        process.wait()


def _statuses() -> dict[str, str]:
    return dict(Execution.objects.values_list("execution_id", "status"))


def _events(channel: str, since: int) -> list[tuple[str, dict]]:
    return [(e.type, json.loads(e.data)) for e in get_storage().get_events(channel, since)]


def test_node_restart_fails_its_previous_lifes_runs_and_tells_dashboards(
    django_capture_on_commit_callbacks,
) -> None:
    node = "celery@node-a"
    me = worker_identity(node)
    factories.started_run(execution_id="dead-run", owner=f"{node}/{NEVER_A_PID}/old")
    factories.started_run(execution_id="mine", owner=me)
    factories.started_run(execution_id="other-node", owner=f"celery@node-b/{NEVER_A_PID}/old")
    factories.started_run(execution_id="queued", owner="")
    list_from = get_storage().get_current_id(events.LIST_CHANNEL)
    one_from = get_storage().get_current_id(events.execution_channel("dead-run"))

    with django_capture_on_commit_callbacks(execute=True):
        failed = startup.recover_interrupted(server=node, owner=me)

    assert failed == ["dead-run"]
    assert _statuses() == {
        "dead-run": "failed",
        "mine": "running",
        "other-node": "running",
        "queued": "running",
    }
    dead = Execution.objects.get(execution_id="dead-run")
    assert dead.error["name"] == "InterruptedError"
    assert f"{node}/{NEVER_A_PID}/old" in dead.error["message"]
    assert ExecutionCounter.objects.stats() == {
        "total": 4,
        "completed": 0,
        "failed": 1,
        "running": 3,
    }
    own_stream = _events(events.execution_channel("dead-run"), one_from)
    assert [name for name, _ in own_stream] == ["workflow.failed"]
    assert "Interrupted" in own_stream[0][1]["error"]
    updates = [data for name, data in _events(events.LIST_CHANNEL, list_from)]
    assert updates[-1]["type"] == "executions.update"
    assert updates[-1]["executions"][0]["executionId"] == "dead-run"
    assert updates[-1]["executions"][0]["status"] == "failed"
    assert updates[-1]["stats"]["failed"] == 1


def test_runs_of_a_live_sibling_with_the_same_server_name_are_left_alone(live_pid: int) -> None:
    factories.started_run(execution_id="sibling", owner=f"web-host/{live_pid}/boot1")
    factories.started_run(execution_id="gone", owner=f"web-host/{NEVER_A_PID}/boot1")

    assert store.executions_fail_interrupted(server="web-host") == ["gone"]
    assert _statuses() == {"sibling": "running", "gone": "failed"}


def test_own_pid_under_another_boot_token_is_a_previous_life() -> None:
    factories.started_run(
        execution_id="before-restart",
        owner=f"web-host/{os.getpid()}/oldboot",
    )

    me = f"web-host/{os.getpid()}/newboot"
    assert store.executions_fail_interrupted(server="web-host", owner=me) == ["before-restart"]


def test_nothing_to_recover_sends_nothing(django_capture_on_commit_callbacks):
    factories.started_run(execution_id="healthy", owner=store.worker_id())
    with django_capture_on_commit_callbacks() as callbacks:
        assert startup.recover_interrupted() == []
    assert callbacks == []
