"""Secrets redacted at the edge: what a run stores, shows, streams, traces, exports and logs.

A workflow gets `input.apiKey` (secret by its key) and `input.passcode` (secret only because a
procedure's contract types it SecretStr); its first procedure returns a `sessionToken` the next
one sends. None of the three appears in any table, span, API answer, page, event, OTLP export or
log line, while the procedures receive them - also when the run resumes after its process died
and when it is run again. The real values are sealed (executions.secrets), and a seal made under
another key fails the run with a clear error.
"""

import json
import logging
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.apps import apps
from django.test import Client, TestCase
from pydantic import BaseModel, SecretStr

from executions import dispatch, runtime, secrets, store
from executions.models import Execution, ExecutionStatus, NodeExecution
from tests import factories
from tests.conftest import DaphneServer
from tests.executions.conftest import http, within
from tests.executions.test_tracing_export import Collector, collector  # noqa: F401 (fixture)
from workflows.registry import ProcedureRegistry, procedure
from workflows.secrets import REDACTED, Redactor

pytestmark = pytest.mark.django_db

API_KEY = "sk-live-7f3a9c2e41d8b6a0"
PASSCODE = "blue-otter-4471"
TOKEN = "tok-9e8d7c6b5a"
SECRETS = (API_KEY, PASSCODE, TOKEN)
INPUT = {"apiKey": API_KEY, "passcode": PASSCODE, "region": "eu"}
DEAD_OWNER = "web-1:8000/4242/dead"
CALL_URL = "https://api.example/v1/orders?key={{input.apiKey}}"

SECRET_WORKFLOW: dict[str, Any] = {
    "id": "secret-workflow",
    "name": "Secret workflow",
    "startNode": "login",
    "nodes": [
        {
            "id": "login",
            "type": "procedure",
            "procedureName": "secret.login",
            "config": {"user": "ada", "passcode": "{{input.passcode}}"},
            "next": "call",
        },
        {
            "id": "call",
            "type": "procedure",
            "procedureName": "secret.call",
            "config": {"authorization": "Bearer {{login.sessionToken}}", "url": CALL_URL},
            "next": "log",
        },
        {
            "id": "log",
            "type": "procedure",
            "procedureName": "custom.log",
            "config": {"message": "called with {{input.apiKey}}"},
        },
    ],
}


class Login(BaseModel):
    user: str
    passcode: SecretStr  # no configured key name: secret by this contract only


class Session(BaseModel):
    sessionToken: str
    greeting: str


class Call(BaseModel):
    authorization: str
    url: str


class Reply(BaseModel):
    status: str
    echo: str


@pytest.fixture
def received(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """secret.login and secret.call, in the process's registry for this test only; the list
    keeps what each received, in clear."""
    seen: list[tuple[str, str]] = []
    own = ProcedureRegistry()

    @procedure("secret.login", registry=own)
    def login(data: Login) -> Session:
        seen.append(("login", data.passcode.get_secret_value()))
        return Session(sessionToken=TOKEN, greeting=f"hello {data.user}")

    @procedure("secret.call", registry=own)
    def call(data: Call) -> Reply:
        seen.append(("call", f"{data.authorization} {data.url}"))
        return Reply(status="ok", echo=data.url)

    factories.procedures(monkeypatch, own)
    return seen


def _in_clear() -> list[tuple[str, str]]:
    return [
        ("login", PASSCODE),
        ("call", f"Bearer {TOKEN} https://api.example/v1/orders?key={API_KEY}"),
    ]


def _database_dump() -> str:
    """Every row of every table, as text."""
    rows = [
        json.dumps([model._meta.label, row], default=str)
        for model in apps.get_models()
        for row in model._default_manager.all().values()
    ]
    return "\n".join(rows)


def _assert_no_secret(text: str, where: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{where} holds a secret"


def test_a_run_stores_no_secret_anywhere_and_its_procedures_receive_them(received, caplog):
    caplog.set_level(logging.DEBUG)
    execution = factories.finished_run(workflow=SECRET_WORKFLOW, input=INPUT)

    assert received == _in_clear()
    _assert_no_secret(_database_dump(), "the database")
    _assert_no_secret(caplog.text, "the log")
    assert f"called with {REDACTED}" in caplog.text

    stored = Execution.objects.get(pk=execution.pk)
    assert stored.status == ExecutionStatus.COMPLETED
    assert stored.input == {"apiKey": REDACTED, "passcode": REDACTED, "region": "eu"}
    assert stored.sealed_secrets
    rows = {row.node_id: row for row in NodeExecution.objects.filter(execution=stored)}
    assert rows["login"].output == {"sessionToken": REDACTED, "greeting": "hello ada"}
    call_input = rows["call"].input
    assert isinstance(call_input, dict)
    assert call_input["authorization"] == REDACTED
    assert rows["call"].output == {
        "status": "ok",
        "echo": f"https://api.example/v1/orders?key={REDACTED}",
    }
    assert stored.outputs["log"]["message"] == f"called with {REDACTED}"
    assert all(row.sealed_output for row in rows.values())
    assert secrets.node_output(rows["login"]) == {"sessionToken": TOKEN, "greeting": "hello ada"}
    assert secrets.sent_input(stored) == INPUT


def test_a_run_with_no_secret_seals_nothing(received) -> None:
    execution = factories.finished_run(input={"x": 1})
    stored = Execution.objects.get(pk=execution.pk)
    assert stored.sealed_secrets is None
    assert not NodeExecution.objects.filter(execution=stored, sealed_output__isnull=False).exists()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("wait", [True, False])
def test_a_run_on_the_pool_is_stored_and_walked_with_one_redactor(
    received, monkeypatch, wait
) -> None:
    made: list[Redactor] = []
    for_run = Redactor.for_run

    def counted(cls: type[Redactor], *args: Any, **kwargs: Any) -> Redactor:
        made.append(for_run(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(Redactor, "for_run", classmethod(counted))
    definition = factories.definition(SECRET_WORKFLOW)
    if wait:
        async_to_sync(dispatch.execute_now)(definition=definition, input=INPUT, execution_id="one")
    else:
        async_to_sync(dispatch.start_in_background)(
            definition=definition, input=INPUT, execution_id="one"
        )
    within(10, lambda: Execution.objects.filter(execution_id="one", status="completed").exists())

    assert len(made) == 1, "the start and the walk each built a redactor"
    assert received == _in_clear()
    _assert_no_secret(_database_dump(), "the database")


def _interrupted() -> Execution:
    """The run as its process left it when it died while `call` was in flight."""
    return factories.interrupted_run(
        workflow=SECRET_WORKFLOW,
        input=INPUT,
        completed={"login": {"sessionToken": TOKEN, "greeting": "hello ada"}},
        running="call",
        owner=DEAD_OWNER,
    )


def _taken_over(execution: Execution) -> Execution:
    taken = store.execution_take_over(
        execution=factories.lapse(execution), owner=store.process_owner()
    )
    assert taken is not None
    return taken


def test_a_run_resumed_after_its_process_died_gets_the_real_secrets_back(received) -> None:
    execution = _interrupted()
    _assert_no_secret(_database_dump(), "the interrupted run's rows")

    with TestCase.captureOnCommitCallbacks(execute=True):
        output = runtime.resume(execution=_taken_over(execution), previous_owner=DEAD_OWNER)

    assert output.body["status"] == "completed"
    # login was done: its sealed output is replayed (not run again) and feeds call's template.
    assert received == _in_clear()[1:]
    _assert_no_secret(_database_dump(), "the resumed run's rows")
    _assert_no_secret(output.json, "the result")


def test_sealed_secrets_cannot_be_read_under_another_key_and_the_run_fails_saying_so(
    received, settings
) -> None:
    execution = _interrupted()
    settings.SECRET_KEY = "another-secret-key-of-a-server-that-was-set-up-again"
    with pytest.raises(secrets.SealedSecretsUnreadable, match="sealed under another key"):
        secrets.sent_input(execution)

    with TestCase.captureOnCommitCallbacks(execute=True):
        output = runtime.resume(execution=_taken_over(execution), previous_owner=DEAD_OWNER)

    assert received == []
    assert output.body["status"] == "failed"
    assert output.body["error"]["name"] == "SealedSecretsUnreadable"
    assert "sealed under another key" in output.body["error"]["message"]
    assert "C4C_SECRETS_KEYS" in output.body["error"]["message"]


def test_a_rotated_key_still_unseals_what_the_old_one_sealed(settings) -> None:
    old = settings.SECRET_KEY
    sealed = secrets.seal({"apiKey": API_KEY})
    settings.C4C_SECRETS_KEYS = ["a-new-key-that-seals-from-now-on-0123456789", old]
    assert secrets.unseal(sealed, what="the test value") == {"apiKey": API_KEY}
    resealed = secrets.seal({"apiKey": API_KEY})
    settings.C4C_SECRETS_KEYS = [old]
    with pytest.raises(secrets.SealedSecretsUnreadable):
        secrets.unseal(resealed, what="the test value")


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("from_node", [None, "call"])
def test_a_rerun_gets_the_originals_secrets(received, from_node) -> None:
    original = factories.finished_run(workflow=SECRET_WORKFLOW, input=INPUT)
    received.clear()

    rerun = runtime.rerun(execution_id=original.execution_id, from_node=from_node)
    within(10, lambda: Execution.objects.get(pk=rerun.pk).status != ExecutionStatus.RUNNING)

    assert Execution.objects.get(pk=rerun.pk).status == ExecutionStatus.COMPLETED
    assert received == (_in_clear() if from_node is None else _in_clear()[1:])
    _assert_no_secret(_database_dump(), "the database after the re-run")


@pytest.mark.slow
def test_the_api_page_streams_and_otlp_export_never_carry_the_secret(
    tmp_path: Path,
    collector: Collector,  # noqa: F811 (the fixture imported above)
    sse: Any,
) -> None:
    """Through a real server: an inline workflow of the example procedures, given input.apiKey;
    every answer, the detail page, both SSE streams and the OTLP export are searched for it."""
    inline = {
        "id": "inline-secret",
        "name": "Inline secret",
        "startNode": "add",
        "nodes": [
            {
                "id": "add",
                "type": "procedure",
                "procedureName": "math.add",
                "config": {"a": 1, "b": 2},
                "next": "log",
            },
            {
                "id": "log",
                "type": "procedure",
                "procedureName": "custom.log",
                "config": {"message": "key is {{input.apiKey}}", "token": "sk-inline-abcdef1234"},
            },
        ],
    }
    server = DaphneServer(
        tmp_path,
        env={
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_ENDPOINT": collector.url,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_BSP_SCHEDULE_DELAY": "100",
        },
    )
    server.start()
    try:
        everything = sse(f"{server.url}/workflow/executions-stream?view=delta")
        one = sse(f"{server.url}/workflow/executions/secret-1/stream")
        status, _, result = http(
            "POST",
            f"{server.url}/workflow/execute",
            {"workflow": inline, "input": {"apiKey": API_KEY}, "executionId": "secret-1"},
        )
        assert status == 200
        assert result["status"] == "completed"
        one.wait_for(lambda events: any(e.event == "workflow.result" for e in events))
        everything.wait_for(lambda events: any(e.event == "workflow.result" for e in events))
        answers = [json.dumps(result)]
        for path in (
            "/workflow/executions/secret-1",
            "/workflow/executions?fields=full",
            "/workflow/executions",
        ):
            status, _, body = http("GET", f"{server.url}{path}")
            assert status == 200, path
            answers.append(json.dumps(body))
        with urllib.request.urlopen(f"{server.url}/executions/secret-1", timeout=10) as page:
            html = page.read().decode()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not collector.spans_named("workflow.execute"):
            time.sleep(0.1)
        log = server.log()
    finally:
        server.stop()

    detail = json.loads(answers[1])["execution"]
    assert detail["nodeDetails"]["log"]["input"]["apiKey"] == REDACTED
    assert detail["nodeDetails"]["log"]["output"]["message"] == f"key is {REDACTED}"
    streamed = [json.dumps(e.data) for reader in (everything, one) for e in reader.events]
    exported = [e.request.SerializeToString().decode("latin-1") for e in collector.exports]
    assert collector.spans_named("custom.log")
    for where, texts in (
        ("the API", answers),
        ("the detail page", [html]),
        ("the SSE events", streamed),
        ("the OTLP export", exported),
        ("the server's log", [log]),
    ):
        for text in texts:
            assert API_KEY not in text, f"{where} holds input.apiKey"
            assert "sk-inline-abcdef1234" not in text, f"{where} holds the definition's token"
    assert REDACTED in html


@pytest.mark.django_db(transaction=True)
def test_the_same_request_under_its_idempotency_key_is_replayed_and_another_secret_refused(
    received,
) -> None:
    """The stored input is redacted: a replay compares the request with the sealed one."""
    client = Client(enforce_csrf_checks=True)

    def post(input: dict[str, Any]) -> Any:
        body = {"workflow": SECRET_WORKFLOW, "input": input}
        return client.post(
            "/workflow/execute",
            data=json.dumps(body),
            content_type="application/json",
            headers={"Idempotency-Key": "order-secret"},
        )

    first = post(INPUT)
    assert first.status_code == 200, first.content
    _assert_no_secret(first.content.decode(), "the result")

    again = post(INPUT)
    assert again.status_code == 200, again.content
    assert again["Idempotent-Replayed"] == "true"

    other = post({**INPUT, "apiKey": "sk-live-another-key-000"})
    assert other.status_code == 422, other.content
    assert "it had another input" in other.json()["error"]
    assert received == _in_clear()
