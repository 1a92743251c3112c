"""c4c's apps work in a project that is not c4c_site: installed from the built wheel, not the tree.

The project in `project/` is what an adopter has (`startproject` output, their own `orders` app)
plus the README's "Add it to your project" lines. The test builds the wheel, installs it into a
fresh virtualenv (the locked versions, from uv's cache or the registry), copies the project to a
temporary folder, migrates, collects static files and serves it with daphne; then it runs the
seed flow through the real server. Nothing from this checkout is importable in that virtualenv,
so a template, static file or migration the wheel leaves out, or a setting the apps read without
a default, fails here.
"""

import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
PROJECT = Path(__file__).resolve().parent / "project"
UV = [shutil.which("uv") or "python3", *([] if shutil.which("uv") else ["-m", "uv"])]
START_TIMEOUT_S = 30.0
ASGI_APP = "embedsite.asgi:application"


def _run(command: Sequence[str | Path], *, cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=240, check=False
    )
    shown = " ".join(map(str, command))
    assert done.returncode == 0, f"{shown} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _adopter_env() -> dict[str, str]:
    """No DJANGO_SETTINGS_MODULE, DATABASE_URL or C4C_* of this test run leaks into the project."""
    keep = {"PATH", "HOME", "LANG", "LC_ALL", "TMPDIR"}
    env = {name: value for name, value in os.environ.items() if name in keep}
    return {**env, "DJANGO_SETTINGS_MODULE": "embedsite.settings", "PYTHONDONTWRITEBYTECODE": "1"}


@pytest.fixture(scope="module")
def venv_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv holding only the wheel and its locked dependencies."""
    work = tmp_path_factory.mktemp("wheel")
    uv_env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    _run([*UV, "build", "--wheel", "--quiet", "--out-dir", str(work / "dist")], cwd=ROOT)
    (wheel,) = (work / "dist").glob("c4c_django-*.whl")
    constraints = work / "constraints.txt"
    _run(
        [
            *UV,
            "export",
            "--frozen",
            "--no-dev",
            "--no-hashes",
            "--no-emit-project",
            "--quiet",
            "--output-file",
            str(constraints),
        ],
        cwd=ROOT,
        env=uv_env,
    )
    python = work / "venv" / "bin" / "python"
    _run([*UV, "venv", "--quiet", "--python", "3.11", str(work / "venv")], cwd=work, env=uv_env)
    _run(
        [*UV, "pip", "install", "--quiet", "--python", str(python), "-c", str(constraints), wheel],
        cwd=work,
        env=uv_env,
    )
    return python


@pytest.fixture(scope="module")
def embedded_server(venv_python: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    project = tmp_path_factory.mktemp("adopter") / "project"
    shutil.copytree(PROJECT, project, ignore=shutil.ignore_patterns("__pycache__"))
    env = _adopter_env()
    manage = [str(venv_python), "manage.py"]
    _run([*manage, "migrate", "--noinput", "-v0"], cwd=project, env=env)
    _run([*manage, "collectstatic", "--noinput", "-v0"], cwd=project, env=env)
    port = free_port()
    log_path = project / "daphne.log"
    with log_path.open("wb") as log:
        daphne = subprocess.Popen(
            [venv_python.with_name("daphne"), "-b", "127.0.0.1", "-p", str(port), ASGI_APP],
            cwd=project,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            assert daphne.poll() is None, f"daphne exited:\n{log_path.read_text()}"
            assert time.monotonic() < deadline, f"daphne did not answer:\n{log_path.read_text()}"
            try:
                httpx.get(f"{url}/orders/", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        yield url
        assert "Traceback" not in log_path.read_text(), log_path.read_text()
    finally:
        daphne.send_signal(signal.SIGTERM)
        try:
            daphne.wait(timeout=10)
        except subprocess.TimeoutExpired:
            daphne.kill()
            daphne.wait(timeout=10)


def test_the_apps_come_from_the_wheel_not_this_checkout(venv_python: Path) -> None:
    found = _run(
        [str(venv_python), "-c", "import executions, workflows; print(executions.__file__)"],
        cwd=venv_python.parent,
        env={"PATH": os.environ["PATH"]},
    )
    assert "site-packages" in found
    assert not found.startswith(str(ROOT) + "/executions")


def test_seed_flow_runs_and_is_recorded_in_an_embedding_project(embedded_server: str) -> None:
    with httpx.Client(base_url=embedded_server, timeout=30) as client:
        run = client.post("/workflow/execute", json={"workflowId": "simple-math-workflow"})
        assert run.status_code == 200, run.text
        result = run.json()
        assert result["status"] == "completed"
        assert result["outputs"] == {
            "add": {"result": 15},
            "multiply": {"result": 6},
            "subtract": {"result": 12},
        }
        execution_id = result["executionId"]

        listed = client.get("/workflow/executions").json()
        assert [e["executionId"] for e in listed["executions"]] == [execution_id]
        assert listed["stats"]["completed"] == 1

        one = client.get(f"/workflow/executions/{execution_id}")
        assert one.status_code == 200
        assert one.json()["execution"]["outputs"]["subtract"] == {"result": 12}

        # The adopter's own URLs still answer beside the apps'.
        assert client.get("/orders/").text == "orders: none yet"


def test_pages_render_with_the_apps_static_files(embedded_server: str) -> None:
    with httpx.Client(base_url=embedded_server, timeout=30) as client:
        for path in ("/executions", "/workflows"):
            page = client.get(path)
            assert page.status_code == 200, page.text
            # The Execute dialog's picker lists the workflows the apps discovered.
            assert "simple-math-workflow" in page.text
            static = set(re.findall(r'(?:src|href)="(/static/executions/[^"]+)"', page.text))
            assert {"/static/executions/css/app.css", "/static/executions/js/live.js"} <= static
            for asset in static:
                served = client.get(asset)
                assert served.status_code == 200, asset
                assert served.content, asset


def test_list_stream_starts_with_its_snapshot(embedded_server: str) -> None:
    with (
        httpx.Client(base_url=embedded_server, timeout=10) as client,
        client.stream("GET", "/workflow/executions-stream") as stream,
    ):
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = []
        for line in stream.iter_lines():
            lines.append(line)
            if line.startswith("data:"):
                break
    assert "event: executions.initial" in lines
