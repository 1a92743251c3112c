"""Which values of a run are secret, and the redacted form of everything that leaves the run.

A value is secret when:

- it sits under a key that names a secret (the setting C4C_SECRET_KEYS: `password`, `token`,
  `secret`, `apiKey`, `authorization`, ...), at any depth. Keys are compared case-insensitively
  with `-` and `_` ignored, and a key matches a name when it is that name or ends with it:
  `apiKey`, `x-api-key`, `GITHUB_TOKEN`, `db_password` and `clientSecret` match; `tokenCount`,
  `max_tokens` and `passwordHint` do not. Everything under such a key is secret (a whole object);
- it fills a field that a procedure's input contract types as pydantic `SecretStr`,
  `SecretBytes` or `Secret[...]` (at any depth of nested models): for a run, the names of those
  fields of every procedure its definition calls count as secret keys too (matched whole);
- it is text that contains a secret string already seen in the run (of MIN_SCRUBBED_CHARS or
  more): an error message that echoes a token, a URL a template built from `{{input.apiKey}}`.

The engine keeps one Redactor per run (the runtime may hand it the one it stores with). It learns
the run's secrets as they appear - the run input and trigger data, the definition's variables
and node configs, each node's input after template expansion, each output - and everything that
leaves the run passes through it: span attributes, span events and status messages, error
messages and stacks, and (through the runtime) every stored, shown and sent value, all of which
say REDACTED in a secret's place. The procedure itself still receives the real value. Log
records made while a run is active (on its walking thread, its branch and procedure threads)
are scrubbed too, whatever logger makes them (install_log_redaction).

A secret key's value that is a bare template placeholder (`"apiKey": "{{input.apiKey}}"` in a
definition) names where a secret comes from and holds none: it is kept, so definitions stay
readable and comparable.
"""

import contextlib
import contextvars
import functools
import logging
import re
import threading
import typing
from collections.abc import Iterable, Iterator, Mapping
from functools import cache
from typing import Any

from pydantic import BaseModel, Secret, SecretBytes, SecretStr

from .conf import app_settings
from .observer import ErrorInfo

if typing.TYPE_CHECKING:
    from .definitions import WorkflowDefinition
    from .registry import ProcedureRegistry

REDACTED = "[redacted]"
# A shorter secret is redacted under its key only: scrubbing "abc" out of every text of a run
# would garble it without protecting much.
MIN_SCRUBBED_CHARS = 4

_SECRET_TYPES = (SecretStr, SecretBytes, Secret)
# Values that hold no text, so no secret: most of a run's values, passed over before the slower
# checks (Mapping is an abstract class).
_PLAIN = (int, float, type(None))
# Keys whose verdict one configuration of names remembers: the keys of a run's values repeat
# from run to run, and they come from its callers, so the memory is bounded.
REMEMBERED_KEYS = 10_000
_PLACEHOLDER = re.compile(r"\s*\{\{[^{}]*\}\}\s*")


def normalized(key: str) -> str:
    """A key as names are compared: lower case, without `-` and `_`."""
    return key.lower().replace("-", "").replace("_", "")


def _is_placeholder(value: Any) -> bool:
    return isinstance(value, str) and _PLACEHOLDER.fullmatch(value) is not None


@functools.lru_cache(maxsize=64)
def _suffixes(names: tuple[str, ...]) -> tuple[str, ...]:
    """The configured names as keys are matched against (each run's redactor has them)."""
    return tuple(sorted({normalized(name) for name in names if name}))


@functools.lru_cache(maxsize=64)
def _verdicts(suffixes: tuple[str, ...], exact: frozenset[str]) -> dict[str, bool]:
    """Key -> whether it names a secret, shared by every redactor of these names (each run has
    one): the keys of one workflow's values are the same in every run."""
    return {}


@cache
def contract_secret_names(model: type[BaseModel]) -> frozenset[str]:
    """The names (and aliases) of the fields `model` types as secret, in it and in the models
    it nests, normalized."""
    names: set[str] = set()
    _collect_secret_names(model, names, set())
    return frozenset(names)


def _collect_secret_names(model: type[BaseModel], names: set[str], seen: set[type]) -> None:
    if model in seen:
        return
    seen.add(model)
    for name, field in model.model_fields.items():
        secret, nested = _inspect_annotation(field.annotation)
        if secret:
            names.add(normalized(name))
            if isinstance(field.alias, str):
                names.add(normalized(field.alias))
            if isinstance(field.validation_alias, str):
                names.add(normalized(field.validation_alias))
        for inner in nested:
            _collect_secret_names(inner, names, seen)


def _inspect_annotation(annotation: Any) -> tuple[bool, list[type[BaseModel]]]:
    """Whether an annotation is (or holds, through Optional, unions, lists and dicts) a secret
    type, and the models it holds."""
    secret, models = False, []
    pending = [annotation]
    while pending:
        current = pending.pop()
        origin = typing.get_origin(current)
        if origin is typing.Annotated:
            pending.append(typing.get_args(current)[0])
            continue
        target = origin if origin is not None else current
        if isinstance(target, type) and issubclass(target, _SECRET_TYPES):
            secret = True
        elif isinstance(current, type) and issubclass(current, BaseModel):
            models.append(current)
        else:
            pending.extend(typing.get_args(current))
    return secret, models


class Redactor:
    """One run's secrets: the key names that mark them and the secret strings seen so far.

    Thread-safe: parallel branches learn and redact at once. learn_* only ever add.
    """

    def __init__(self, names: Iterable[str] | None = None, exact: Iterable[str] = ()) -> None:
        configured = app_settings.C4C_SECRET_KEYS if names is None else names
        self._suffixes = _suffixes(tuple(configured))
        self._exact = frozenset(normalized(n) for n in exact if n)
        self._verdicts = _verdicts(self._suffixes, self._exact)
        self._values: frozenset[str] = frozenset()
        self._pattern: re.Pattern[str] | None = None
        self._lock = threading.Lock()
        # The definition, input and trigger data learn_run last noted (by identity).
        self._started: tuple[Any, Any, Any] | None = None

    @classmethod
    def for_run(
        cls,
        definition: "WorkflowDefinition",
        input: Mapping[str, Any] | None,
        *,
        trigger_event: Mapping[str, Any] | None = None,
        registry: "ProcedureRegistry | None" = None,
    ) -> "Redactor":
        """A run's redactor, knowing what its definition, input and trigger data hold: what the
        engine knows when it starts, so a run's rows can be stored before it does."""
        from .registry import procedure_registry

        procedures = registry if registry is not None else procedure_registry()
        exact: set[str] = set()
        for node in definition.nodes:
            proc = procedures.get(node.procedure_name) if node.procedure_name else None
            if proc is not None:
                exact |= contract_secret_names(proc.input_model)
        redactor = cls(exact=exact)
        redactor.learn_run(definition, input, trigger_event)
        return redactor

    # What is secret ---------------------------------------------------------------------------

    def is_secret_key(self, key: str) -> bool:
        verdict = self._verdicts.get(key)
        if verdict is None:
            name = normalized(key)
            verdict = name in self._exact or name.endswith(self._suffixes)
            if len(self._verdicts) < REMEMBERED_KEYS:
                self._verdicts[key] = verdict
        return verdict

    @property
    def values(self) -> frozenset[str]:
        """The secret strings seen so far (those long enough to be scrubbed out of text)."""
        return self._values

    def learn(self, value: Any) -> None:
        """Note the secrets `value` holds under secret keys, at any depth."""
        if value is None or (isinstance(value, dict | list) and not value):
            return  # most node configs, and many inputs: nothing to look through
        found: list[str] = []
        self._find(value, found, under_secret=False)
        if found:
            self._add(found)

    def learn_run(self, definition: "WorkflowDefinition", input: Any, trigger_event: Any) -> None:
        """Note what a run starts with. The same objects again are passed over: the engine is
        handed the redactor the runtime made for them (a resume hands it unsealed copies)."""
        started = (definition, input, trigger_event)
        if self._started is not None and all(
            new is old for new, old in zip(started, self._started, strict=True)
        ):
            return
        self.learn_definition(definition)
        self.learn(input)
        self.learn(trigger_event)
        self._started = started

    def learn_definition(self, definition: "WorkflowDefinition") -> None:
        """Note the secrets a definition's variables and node configs hold (placeholders are
        not secrets: they name where one comes from)."""
        self.learn(definition.variables)
        for node in definition.nodes:
            self.learn(node.config)

    def learn_contract(self, model: type[BaseModel], data: Any) -> None:
        """Note the values `data` gives the fields `model` types as secret."""
        names = contract_secret_names(model)
        if not names or not isinstance(data, Mapping):
            return
        found: list[str] = []
        for key, value in data.items():
            if normalized(str(key)) in names:
                self._find(value, found, under_secret=True)
        self._add(found)

    def _find(self, value: Any, found: list[str], *, under_secret: bool) -> None:
        if isinstance(value, _PLAIN):
            return
        if isinstance(value, dict | Mapping):
            verdicts = self._verdicts
            for key, item in value.items():
                if isinstance(item, _PLAIN):
                    continue  # no text, no secret: most values, passed over without a call
                verdict = verdicts.get(key)
                if verdict is None:
                    verdict = self.is_secret_key(str(key))
                secret = under_secret or verdict
                if secret or not isinstance(item, str):
                    self._find(item, found, under_secret=secret)
        elif isinstance(value, list | tuple):
            for item in value:
                self._find(item, found, under_secret=under_secret)
        elif isinstance(value, _SECRET_TYPES):
            self._find(value.get_secret_value(), found, under_secret=True)
        elif under_secret:
            text = value.decode(errors="replace") if isinstance(value, bytes) else value
            if isinstance(text, str) and not _is_placeholder(text):
                found.append(text)

    def _add(self, found: list[str]) -> None:
        fresh = {text for text in found if len(text) >= MIN_SCRUBBED_CHARS} - self._values
        if not fresh:
            return
        with self._lock:
            values = self._values | fresh
            # Longest first, so a secret that contains another is replaced whole.
            ordered = sorted(values, key=len, reverse=True)
            self._pattern = re.compile("|".join(re.escape(text) for text in ordered))
            self._values = frozenset(values)

    # Redacted forms ---------------------------------------------------------------------------

    def redact(self, value: Any) -> Any:
        """`value` with every secret in REDACTED's place: values under secret keys (bare
        placeholders kept), pydantic secrets, and secret strings inside any text. Returns
        `value` itself when it holds nothing secret, so the common case copies nothing."""
        return self._redact(value, self._pattern)

    def _redact(self, value: Any, pattern: re.Pattern[str] | None) -> Any:
        if isinstance(value, str):
            return pattern.sub(REDACTED, value) if pattern is not None else value
        if isinstance(value, _PLAIN):
            return value
        if isinstance(value, dict | Mapping):
            changed = False
            copy: dict[Any, Any] = {}
            verdicts = self._verdicts
            for key, item in value.items():
                secret = verdicts.get(key)
                if secret is None:
                    secret = self.is_secret_key(str(key))
                if secret and not _is_placeholder(item) and item is not None:
                    redacted: Any = REDACTED
                elif isinstance(item, _PLAIN) or (pattern is None and isinstance(item, str)):
                    redacted = item  # nothing to replace in it: no call
                else:
                    redacted = self._redact(item, pattern)
                changed = changed or redacted is not item
                copy[key] = redacted
            return copy if changed else value
        if isinstance(value, list | tuple):
            items = [self._redact(item, pattern) for item in value]
            if all(new is old for new, old in zip(items, value, strict=True)):
                return value
            return items
        if isinstance(value, _SECRET_TYPES):
            return REDACTED
        return value

    def redact_text(self, text: str) -> str:
        """`text` with every secret string seen so far replaced."""
        pattern = self._pattern
        return pattern.sub(REDACTED, text) if pattern is not None else text

    def redact_error(self, error: ErrorInfo) -> ErrorInfo:
        """An error whose message or stack echoes a secret, with it replaced."""
        if self._pattern is None:
            return error
        message, stack = self.redact_text(error.message), self.redact_text(error.stack)
        if message == error.message and stack == error.stack:
            return error
        return ErrorInfo(name=error.name, message=message, stack=stack)

    @contextlib.contextmanager
    def active(self) -> Iterator["Redactor"]:
        """Make this the redactor of log records made in this context (and the threads that
        copy it: a run's branches and procedure threads)."""
        install_log_redaction()
        token = _active.set(self)
        try:
            yield self
        finally:
            _active.reset(token)


# Logs ------------------------------------------------------------------------------------------

_active: contextvars.ContextVar[Redactor | None] = contextvars.ContextVar(
    "c4c_redactor", default=None
)
_installed = threading.Lock()
_previous_factory: Any = None


def _redacting_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
    """Every log record made while a run is active, with the run's secrets scrubbed out of its
    message and the traceback it carries: what any handler writes (a file, the console, a log
    service) never holds them."""
    record: logging.LogRecord = _previous_factory(*args, **kwargs)
    redactor = _active.get()
    if redactor is None or not redactor.values:
        return record
    message = record.getMessage()
    cleaned = redactor.redact_text(message)
    if cleaned != message:
        record.msg, record.args = cleaned, None
    if record.exc_info and record.exc_info[1] is not None:
        record.exc_text = redactor.redact_text(logging.Formatter().formatException(record.exc_info))
    return record


def install_log_redaction() -> None:
    """Wrap the logging module's record factory once per process (idempotent)."""
    global _previous_factory
    with _installed:
        if _previous_factory is not None:
            return
        _previous_factory = logging.getLogRecordFactory()
        logging.setLogRecordFactory(_redacting_record)
