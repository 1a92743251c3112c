"""The workflows app's settings: every C4C_* name it reads, its default and what it is for; and
the `setting` each app's settings are read through.

The app reads its settings here and nowhere else, so a project that installs it sets only what it
wants to change. Each is read once and kept until a setting changes (a test's `settings` override
applies at once), and without configured Django settings every default holds: the engine also
runs in plain scripts.
"""

from collections.abc import Callable
from pathlib import Path
from typing import Any, Generic, Self, TypeVar, overload

from django.conf import settings
from django.core.signals import setting_changed

T = TypeVar("T")


class setting(Generic[T]):  # a decorator, as property is
    """A typed setting, read once and then kept on its settings object as a plain attribute.

    A run reads about a hundred settings; read through a property, each cost two Python calls (the
    property's and Django's LazySettings'), 3 % of a run's calls. This descriptor has no __set__,
    so the value it keeps in the object's __dict__ is found before it is ever called again.
    AppSettings forgets every kept value when any setting changes (override_settings and
    pytest-django's `settings` say so), and nothing is kept before the settings are configured, so
    a default read by a plain script does not outlive its settings.configure().
    """

    def __init__(self, read: Callable[[Any], T]) -> None:
        self.read = read
        self.name = read.__name__
        self.__doc__ = read.__doc__

    @overload
    def __get__(self, instance: None, owner: type[Any] | None = None) -> Self: ...

    @overload
    def __get__(self, instance: object, owner: type[Any] | None = None) -> T: ...

    def __get__(self, instance: object | None, owner: type[Any] | None = None) -> "T | Self":
        if instance is None:
            return self
        value = self.read(instance)
        if settings.configured:
            instance.__dict__[self.name] = value
        return value


class AppSettings:
    """An app's settings object: the values its `setting`s keep are forgotten whenever a setting
    changes. Values are immutable (tuples, not lists), as every caller shares them."""

    def __init__(self) -> None:
        setting_changed.connect(self._forget, weak=False, dispatch_uid=id(self))

    def _forget(self, **kwargs: Any) -> None:
        self.__dict__.clear()


# What C4C_SECRET_KEYS names unless a project sets it: each also matches keys ending with it, so
# "token" covers accessToken and GITHUB_TOKEN, "secret" clientSecret, "apikey" x-api-key.
DEFAULT_SECRET_KEYS = (
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "apiKey",
    "authorization",
    "cookie",
    "privateKey",
    "credential",
    "credentials",
)


def _setting(name: str, default: Any) -> Any:
    return getattr(settings, name, default) if settings.configured else default


class WorkflowsSettings(AppSettings):
    """Typed, documented reads of the project's settings; the default where one is not set."""

    @setting
    def C4C_WORKFLOW_DIRS(self) -> tuple[Path, ...]:
        """Folders whose JSON workflow definitions are discovered at start-up (none by default)."""
        return tuple(Path(folder) for folder in _setting("C4C_WORKFLOW_DIRS", []))

    @setting
    def C4C_MAX_STEPS(self) -> int:
        """Node runs after which a run fails, so a loop that never ends stops."""
        return int(_setting("C4C_MAX_STEPS", 10_000))

    @setting
    def C4C_DELAY_SCALE(self) -> float:
        """The fraction of its configured time custom.delay waits (tests and demos run fast)."""
        return float(_setting("C4C_DELAY_SCALE", 1.0))

    @setting
    def C4C_MAX_EXPANDED_BYTES(self) -> int:
        """The most bytes a node's templates may expand its input to."""
        return int(_setting("C4C_MAX_EXPANDED_BYTES", 1024 * 1024))

    @setting
    def C4C_MAX_DEFINITION_BYTES(self) -> int:
        """The largest definition (as JSON) that validates, so every snapshot fits its row."""
        return int(_setting("C4C_MAX_DEFINITION_BYTES", 1024 * 1024))

    @setting
    def C4C_SECRET_KEYS(self) -> tuple[str, ...]:
        """Key names whose values are secret at any depth (workflows.secrets): compared without
        case, `-` and `_`, a key matching a name it is or ends with (`x-api-key`, `dbPassword`)."""
        return tuple(_setting("C4C_SECRET_KEYS", DEFAULT_SECRET_KEYS))

    @setting
    def C4C_SPAN_PAYLOAD_CHARS(self) -> int:
        """How much of a procedure node's input and output its span copies as the attributes
        procedure.input / procedure.output (JSON, redacted, cut there). 0, the default: none; the
        node's row keeps them whole, and redacting and encoding two copies per node cost every
        run (bench.spans_cost measures it)."""
        return int(_setting("C4C_SPAN_PAYLOAD_CHARS", 0))

    @setting
    def C4C_PROCEDURE_SPANS(self) -> str:
        """Spans per procedure attempt. "all" (the default): each attempt has a span of its own
        under its node's span. "none": the node's span stands for its attempts (its failure,
        attempt number and status), halving a run's spans for huge fan-outs; attempt logs stay in
        the node logs but are no span events then."""
        return str(_setting("C4C_PROCEDURE_SPANS", "all"))

    @setting
    def C4C_MAX_LOG_LINES(self) -> int:
        """Log lines kept per procedure attempt (workflows.logs); the rest are counted dropped."""
        return int(_setting("C4C_MAX_LOG_LINES", 1_000))

    @setting
    def C4C_MAX_LOG_BYTES(self) -> int:
        """Bytes of log messages kept per procedure attempt; the rest are counted as dropped."""
        return int(_setting("C4C_MAX_LOG_BYTES", 256 * 1024))


app_settings = WorkflowsSettings()
