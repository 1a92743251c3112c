"""Secrets kept secret by the engine: what is secret, its redacted form, spans, errors and logs.

The engine runs with a registry holding procedures whose contracts mark a SecretStr field; the
spans are read from an in-memory exporter on the real SDK provider (tests/workflows/conftest).
"""

import json
import logging
from typing import Any

import pytest
from pydantic import BaseModel, Field, SecretStr

from workflows.definitions import WorkflowDefinition
from workflows.observer import ErrorInfo
from workflows.registry import ProcedureRegistry, procedure, procedure_registry
from workflows.secrets import REDACTED, Redactor, contract_secret_names

API_KEY = "sk-live-7f3a9c2e41d8b6"
PIN = "pin-55192-zeta"


class Credentials(BaseModel):
    user: str
    pin: SecretStr


class Nested(BaseModel):
    login: Credentials | None = None
    keys: list[Credentials] = []
    signature: SecretStr | None = Field(default=None, alias="sig")


class Greeting(BaseModel):
    greeting: str


class Call(BaseModel):
    url: str
    pin: SecretStr


@pytest.fixture
def secret_registry() -> tuple[ProcedureRegistry, list[str]]:
    """The example procedures and three that see secrets; the list keeps what they received."""
    registry = ProcedureRegistry()
    for proc in procedure_registry().all():
        registry.register(proc)
    received: list[str] = []

    @procedure("secret.greet", registry=registry)
    def greet(data: Credentials) -> Greeting:
        received.append(data.pin.get_secret_value())
        return Greeting(greeting=f"hello {data.user}")

    @procedure("secret.refuse", registry=registry)
    def refuse(data: Call) -> Greeting:
        received.append(data.url)
        logging.getLogger("tests.secret").warning("calling %s", data.url)
        raise PermissionError(f"{data.url} refused pin {data.pin.get_secret_value()}")

    return registry, received


@pytest.mark.parametrize(
    ("key", "secret"),
    [
        ("apiKey", True),
        ("api_key", True),
        ("X-Api-Key", True),
        ("GITHUB_TOKEN", True),
        ("accessToken", True),
        ("db_password", True),
        ("clientSecret", True),
        ("Authorization", True),
        ("set-cookie", True),
        ("privateKey", True),
        ("credentials", True),
        ("tokenCount", False),
        ("max_tokens", False),
        ("passwordHint", False),
        ("secretary", False),
        ("a", False),
    ],
)
def test_keys_match_a_configured_name_they_are_or_end_with(key: str, secret: bool) -> None:
    assert Redactor().is_secret_key(key) is secret


def test_the_configured_names_replace_the_default_list(settings) -> None:
    settings.C4C_SECRET_KEYS = ["pin"]
    redactor = Redactor()
    assert redactor.is_secret_key("PIN")
    assert redactor.is_secret_key("card-pin")
    assert not redactor.is_secret_key("password")


def test_contract_secret_fields_are_found_through_optionals_lists_aliases_and_nesting() -> None:
    assert contract_secret_names(Credentials) == {"pin"}
    assert contract_secret_names(Nested) == {"pin", "signature", "sig"}
    assert contract_secret_names(Greeting) == frozenset()


def test_redact_replaces_secret_keys_at_any_depth_and_secret_text_anywhere() -> None:
    redactor = Redactor()
    value = {
        "apiKey": API_KEY,
        "headers": {"Authorization": f"Bearer {API_KEY}", "accept": "json"},
        "items": [{"credentials": {"user": "ada", "pass": "x"}}, 3, None],
        "url": f"https://api.example/?key={API_KEY}",
        "template": "{{input.apiKey}}",
        "token": "{{ input.token }}",
        "count": 2,
    }
    redactor.learn(value)
    assert redactor.values == {API_KEY, f"Bearer {API_KEY}"}
    assert redactor.redact(value) == {
        "apiKey": REDACTED,
        "headers": {"Authorization": REDACTED, "accept": "json"},
        "items": [{"credentials": REDACTED}, 3, None],
        "url": f"https://api.example/?key={REDACTED}",
        "template": "{{input.apiKey}}",
        "token": "{{ input.token }}",
        "count": 2,
    }
    assert value["apiKey"] == API_KEY, "the value given is left as it was"


def test_numbers_under_secret_keys_are_redacted_before_any_secret_text_is_known() -> None:
    redactor = Redactor()
    value = {"password": 1234, "nested": {"token": 5.5, "n": 1}, "ok": True, "note": "token"}
    redactor.learn(value)
    assert redactor.values == frozenset(), "only text is scrubbed out of other text"
    assert redactor.redact(value) == {
        "password": REDACTED,
        "nested": {"token": REDACTED, "n": 1},
        "ok": True,
        "note": "token",
    }


def test_a_value_with_nothing_secret_is_returned_as_it_is() -> None:
    redactor = Redactor()
    redactor.learn({"apiKey": API_KEY})
    value = {"a": 1, "nested": [{"b": "text"}]}
    assert redactor.redact(value) is value


def test_a_run_learned_again_from_the_same_objects_is_passed_over_but_not_from_copies(
    monkeypatch,
) -> None:
    definition = WorkflowDefinition.model_validate(
        {"id": "w", "name": "w", "version": "1", "startNode": "a", "nodes": []}
    )
    sent = {"apiKey": API_KEY}
    redactor = Redactor.for_run(definition, sent)
    walks: list[Any] = []
    monkeypatch.setattr(redactor, "learn_definition", walks.append)

    redactor.learn_run(definition, sent, None)
    assert walks == [], "the objects for_run learned are not walked again"
    unsealed = {"apiKey": PIN}  # a resume hands the engine copies with the real values
    redactor.learn_run(definition, unsealed, None)
    assert walks == [definition]
    assert redactor.values == frozenset({API_KEY, PIN})


def test_short_secrets_are_redacted_under_their_key_but_not_scrubbed_from_text() -> None:
    redactor = Redactor()
    redactor.learn({"pin": "123", "password": "abc"})
    assert redactor.values == frozenset()
    assert redactor.redact({"password": "abc", "note": "abc"}) == {
        "password": REDACTED,
        "note": "abc",
    }


def test_pydantic_secrets_are_redacted_wherever_they_appear() -> None:
    redactor = Redactor()
    redactor.learn({"nested": SecretStr(PIN)})
    assert redactor.values == {PIN}
    assert redactor.redact([SecretStr(PIN), f"x{PIN}x"]) == [REDACTED, f"x{REDACTED}x"]


def test_errors_echoing_a_secret_are_redacted() -> None:
    redactor = Redactor()
    redactor.learn({"token": API_KEY})
    error = ErrorInfo(name="ValueError", message=f"bad {API_KEY}", stack=f"line\n{API_KEY}")
    assert redactor.redact_error(error) == ErrorInfo(
        name="ValueError", message=f"bad {REDACTED}", stack=f"line\n{REDACTED}"
    )


def _secret_workflow() -> WorkflowDefinition:
    return WorkflowDefinition.model_validate(
        {
            "id": "secrets",
            "name": "Secrets",
            "startNode": "greet",
            "nodes": [
                {
                    "id": "greet",
                    "type": "procedure",
                    "procedureName": "secret.greet",
                    "config": {"user": "ada"},
                    "next": "refuse",
                },
                {
                    "id": "refuse",
                    "type": "procedure",
                    "procedureName": "secret.refuse",
                    "config": {"url": "https://api.example/?key={{input.apiKey}}"},
                },
            ],
        }
    )


def test_spans_errors_and_logs_carry_only_redacted_values_while_procedures_get_real_ones(
    run, observer, spans, secret_registry, caplog, settings
) -> None:
    settings.C4C_SPAN_PAYLOAD_CHARS = 4096  # payload copies on spans, so their redaction shows
    registry, received = secret_registry
    caplog.set_level(logging.INFO)
    result = run(_secret_workflow(), {"apiKey": API_KEY, "pin": PIN}, registry=registry)

    assert received == [PIN, f"https://api.example/?key={API_KEY}"]
    assert result.status == "failed"
    assert result.error is not None
    assert result.error.message == f"https://api.example/?key={REDACTED} refused pin {REDACTED}"
    failed = [kwargs for hook, kwargs in observer.calls if hook == "node_failed"]
    assert failed[0]["error"].message == result.error.message
    assert API_KEY not in failed[0]["error"].stack
    assert PIN not in failed[0]["error"].stack

    recorded = spans(result.trace_id)
    exported = json.dumps(
        [
            {
                "name": span.name,
                "attributes": dict(span.attributes or {}),
                "status": span.status.description,
                "events": [(e.name, dict(e.attributes or {})) for e in span.events],
            }
            for span in recorded
        ]
    )
    assert API_KEY not in exported
    assert PIN not in exported
    greet_node = next(s for s in recorded if (s.attributes or {}).get("node.id") == "greet")
    assert json.loads(greet_node.attributes["procedure.input"]) == {
        "user": "ada",
        "apiKey": REDACTED,
        "pin": REDACTED,
    }
    refuse_call = next(s for s in recorded if s.name == "secret.refuse")
    assert refuse_call.status.description == (
        f"PermissionError: https://api.example/?key={REDACTED} refused pin {REDACTED}"
    )
    [event] = refuse_call.events
    assert event.attributes["exception.type"] == "PermissionError"
    assert event.attributes["exception.message"] == result.error.message

    assert API_KEY not in caplog.text
    assert PIN not in caplog.text
    assert f"calling https://api.example/?key={REDACTED}" in caplog.text


def test_log_records_outside_a_run_are_left_as_they_are(caplog) -> None:
    redactor = Redactor()
    redactor.learn({"apiKey": API_KEY})
    with redactor.active():
        logging.getLogger("tests.secret").warning("inside %s", API_KEY)
    logging.getLogger("tests.secret").warning("outside %s", API_KEY)
    assert [r.getMessage() for r in caplog.records] == [
        f"inside {REDACTED}",
        f"outside {API_KEY}",
    ]


def test_observer_gets_real_inputs_and_outputs_to_seal(run, observer, secret_registry) -> None:
    registry, _ = secret_registry
    run(_secret_workflow(), {"apiKey": API_KEY, "pin": PIN}, registry=registry)
    started: dict[str, Any] = {
        kwargs["node"].id: kwargs["input"]
        for hook, kwargs in observer.calls
        if hook == "node_started"
    }
    assert started["greet"]["pin"] == PIN
    assert started["refuse"]["url"] == f"https://api.example/?key={API_KEY}"
