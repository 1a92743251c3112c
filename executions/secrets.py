"""Secrets sealed at rest: what a run stores redacted, kept encrypted beside it to run again.

workflows.secrets decides what is secret and redacts it; every row keeps only that redacted form
(input, definition snapshot, node inputs and outputs, outputs, errors, spans), so nothing stored,
shown, streamed or exported holds a secret. A durable run still needs the real values when it
resumes from its rows after a crash, and a re-run when it runs the original's input again, so
the values redaction replaced are sealed beside the redacted ones, never in clear:

- Execution.sealed_secrets: the real input and, for an inline definition holding secrets, the
  real definition ({"input": ..., "definition": ...}, only what redaction changed);
- NodeExecution.sealed_output: the real output of a node whose output held a secret (its
  checkpoint); node inputs are never needed again and are only redacted.

Sealing is `cryptography`'s Fernet (AES-128-CBC with HMAC-SHA256, timestamped tokens) under
MultiFernet: the keys are C4C_SECRETS_KEYS (newest first; each entry any high-entropy text) or,
when it is empty, SECRET_KEY with SECRET_KEY_FALLBACKS, each stretched to a Fernet key with
HKDF-SHA256. The first key seals and every key unseals, so keys rotate by prepending. A value
sealed under a key no longer listed raises SealedSecretsUnreadable (a ValueError naming what
could not be read and why), and a run that needs it fails with that message instead of running
on REDACTED. A value larger than C4C_MAX_PAYLOAD_BYTES is stored cut and not sealed (a run
cannot resume from it anyway: executions.runtime.CannotResume).
"""

import base64
import json
from functools import lru_cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

from workflows.definitions import WorkflowDefinition
from workflows.secrets import Redactor

from .conf import app_settings
from .models import Execution, NodeExecution
from .payloads import TRUNCATED_KEY, bounded, dumps

_HKDF_SALT = b"c4c-django sealed secrets"
_HKDF_INFO = b"executions.secrets Fernet key v1"


class SealedSecretsUnreadable(ValueError):
    """A sealed value that none of the configured keys opens."""


def _key_material() -> tuple[str, ...]:
    configured = app_settings.C4C_SECRETS_KEYS
    if configured:
        return tuple(configured)
    return (
        str(settings.SECRET_KEY),
        *(str(k) for k in getattr(settings, "SECRET_KEY_FALLBACKS", [])),
    )


@lru_cache(maxsize=8)
def _fernet(material: tuple[str, ...]) -> MultiFernet:
    keys = []
    for text in material:
        derived = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=_HKDF_SALT, info=_HKDF_INFO
        ).derive(text.encode())
        keys.append(Fernet(base64.urlsafe_b64encode(derived)))
    return MultiFernet(keys)


def seal(value: Any) -> str:
    """`value` (JSON-native) encrypted under the first key, as text for a column."""
    return _fernet(_key_material()).encrypt(dumps(value).encode()).decode()


def unseal(token: str, *, what: str) -> Any:
    """The value `token` seals; SealedSecretsUnreadable naming `what` when no key opens it."""
    try:
        text = _fernet(_key_material()).decrypt(token.encode())
    except InvalidToken:
        raise SealedSecretsUnreadable(
            f"The secrets of {what} were sealed under another key and cannot be read: SECRET_KEY "
            f"or C4C_SECRETS_KEYS changed since; list the old key in C4C_SECRETS_KEYS (or "
            f"SECRET_KEY_FALLBACKS) to read them"
        ) from None
    return json.loads(text)


def _cut(value: Any) -> bool:
    stored = bounded(value)
    return isinstance(stored, dict) and stored.get(TRUNCATED_KEY) is True


# What a run stores --------------------------------------------------------------------------------


def protect_run(
    redactor: Redactor, definition: WorkflowDefinition, input: Any
) -> tuple[WorkflowDefinition, Any, str | None]:
    """What a new run stores: its definition and input redacted, and their real values sealed
    (None when nothing was redacted)."""
    sealed: dict[str, Any] = {}
    stored_input = redactor.redact(input)
    if stored_input is not input and not _cut(input):
        sealed["input"] = input
    stored_definition = definition
    changed = redactor.redact(definition.variables) is not definition.variables or any(
        redactor.redact(node.config) is not node.config for node in definition.nodes
    )
    if changed:
        snapshot = definition.to_json_dict()
        stored_definition = WorkflowDefinition.model_validate(redactor.redact(snapshot))
        sealed["definition"] = snapshot
    return stored_definition, stored_input, seal(sealed) if sealed else None


def protect_output(redactor: Redactor, output: Any) -> tuple[Any, str | None]:
    """A node output as stored (redacted) and sealed (None when it held no secret)."""
    stored = redactor.redact(output)
    if stored is output or _cut(output):
        return stored, None
    return stored, seal(output)


# What a run gets back -----------------------------------------------------------------------------


def unsealed_run(execution: Execution) -> dict[str, Any]:
    """The execution's sealed real values: "input" and "definition" when either held secrets
    (empty when none did)."""
    if not execution.sealed_secrets:
        return {}
    found = unseal(execution.sealed_secrets, what=f"execution '{execution.execution_id}'")
    return found if isinstance(found, dict) else {}


def sent_input(execution: Execution) -> Any:
    """The input the execution was started with, its secrets unsealed."""
    return unsealed_run(execution).get("input", execution.input)


def sent_definition(execution: Execution) -> Any:
    """The definition snapshot the execution ran, its secrets unsealed."""
    return unsealed_run(execution).get("definition", execution.definition)


def node_output(row: NodeExecution) -> Any:
    """A node run's real output: the checkpoint a resumed run replays."""
    if not row.sealed_output:
        return row.output
    return unseal(row.sealed_output, what=f"node {row.node_id}'s output")
