"""The workflows app's settings: every C4C_* name it reads, its default and what it is for.

The app reads its settings here and nowhere else, so a project that installs it sets only what it
wants to change. Each is read when asked for (a test's `settings` override applies at once), and
without configured Django settings every default holds: the engine also runs in plain scripts.
"""

from pathlib import Path
from typing import Any

from django.conf import settings

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


class WorkflowsSettings:
    """Typed, documented reads of the project's settings; the default where one is not set."""

    @property
    def C4C_WORKFLOW_DIRS(self) -> list[Path]:
        """Folders whose JSON workflow definitions are discovered at start-up (none by default)."""
        return [Path(folder) for folder in _setting("C4C_WORKFLOW_DIRS", [])]

    @property
    def C4C_MAX_STEPS(self) -> int:
        """Node runs after which a run fails, so a loop that never ends stops."""
        return int(_setting("C4C_MAX_STEPS", 10_000))

    @property
    def C4C_DELAY_SCALE(self) -> float:
        """The fraction of its configured time custom.delay waits (tests and demos run fast)."""
        return float(_setting("C4C_DELAY_SCALE", 1.0))

    @property
    def C4C_MAX_EXPANDED_BYTES(self) -> int:
        """The most bytes a node's templates may expand its input to."""
        return int(_setting("C4C_MAX_EXPANDED_BYTES", 1024 * 1024))

    @property
    def C4C_MAX_DEFINITION_BYTES(self) -> int:
        """The largest definition (as JSON) that validates, so every snapshot fits its row."""
        return int(_setting("C4C_MAX_DEFINITION_BYTES", 1024 * 1024))

    @property
    def C4C_SECRET_KEYS(self) -> list[str]:
        """Key names whose values are secret at any depth (workflows.secrets): compared without
        case, `-` and `_`, a key matching a name it is or ends with (`x-api-key`, `dbPassword`)."""
        return list(_setting("C4C_SECRET_KEYS", DEFAULT_SECRET_KEYS))

    @property
    def C4C_SPAN_PAYLOAD_CHARS(self) -> int:
        """How much of a procedure node's input and output its span copies as the attributes
        procedure.input / procedure.output (JSON, redacted, cut there). 0, the default: none; the
        node's row keeps them whole, and redacting and encoding two copies per node cost every
        run (bench.spans_cost measures it)."""
        return int(_setting("C4C_SPAN_PAYLOAD_CHARS", 0))

    @property
    def C4C_PROCEDURE_SPANS(self) -> str:
        """Spans per procedure attempt. "all" (the default): each attempt has a span of its own
        under its node's span. "none": the node's span stands for its attempts (its failure,
        attempt number and status), halving a run's spans for huge fan-outs; attempt logs stay in
        the node logs but are no span events then."""
        return str(_setting("C4C_PROCEDURE_SPANS", "all"))

    @property
    def C4C_MAX_LOG_LINES(self) -> int:
        """Log lines kept per procedure attempt (workflows.logs); the rest are counted dropped."""
        return int(_setting("C4C_MAX_LOG_LINES", 1_000))

    @property
    def C4C_MAX_LOG_BYTES(self) -> int:
        """Bytes of log messages kept per procedure attempt; the rest are counted as dropped."""
        return int(_setting("C4C_MAX_LOG_BYTES", 256 * 1024))


app_settings = WorkflowsSettings()
