"""Webhooks: POST /workflow/hooks/<hookId> starts the hook's workflow from another system.

The JSON object sent is the run's trigger event: it is the run's input, which the workflow's
trigger node records as its output (workflows.engine) and which a resumed run reads back from
the row, with one key added, `startedBy: {"hook": "<hookId>"}`, recording which hook started
the run (a body that sends `startedBy` itself is refused, so it cannot be forged or lost). The
run goes on in the background (executions.dispatch) and the answer is 202
{"executionId", "hookId", "location"} with a Location header.

The endpoint is authenticated by the hook's secret, not by API tokens (accounts.policy leaves it
open): `X-C4C-Signature: sha256=<hex>`, the HMAC-SHA256 of the raw body under the secret,
compared in constant time. The secret is kept sealed (executions.secrets) and appears in no run
row. The hook's `idempotency_header` (default Idempotency-Key) names the header whose value, scoped
to the hook (`hook:<hookId>:<value>`, the existing Idempotency-Key machinery), makes a sender's
retry answer the run its first delivery started (Idempotent-Replayed: true) instead of a second.

Checked in this order, nothing written until all pass: unknown or disabled hook 404, body past
C4C_HOOK_MAX_BYTES (default 1 MiB) 413, missing or wrong signature 401, not application/json 415,
not a JSON object (or an unusable idempotency key) 400; a full run pool 503 with Retry-After.
"""

import hashlib
import hmac
import re
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse
from ninja import Router
from pydantic import Field

from workflows.definitions import WorkflowDefinition
from workflows.library import workflow_library

from .. import dispatch, store
from ..models import Execution, WebhookHook
from ..secrets import unseal
from .bodies import error, json_object
from .requests import IDEMPOTENCY_KEY_MAX_CHARS, BadRequest
from .schemas import Body, ErrorBody
from .views import REPLAYED_HEADER

SIGNATURE_HEADER = "X-C4C-Signature"
SIGNATURE_PREFIX = "sha256="
STARTED_BY = "startedBy"
DEFAULT_MAX_BYTES = 1024 * 1024
_PRINTABLE = re.compile(r"[!-~](?:[ -~]*[!-~])?")


class HookAccepted(Body):
    executionId: str
    hookId: str
    location: str = Field(description="Where the execution can be read (also the Location).")


class HookRefused(Exception):
    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def max_bytes() -> int:
    return int(getattr(settings, "C4C_HOOK_MAX_BYTES", DEFAULT_MAX_BYTES))


def _declared_length(request: HttpRequest) -> int:
    try:
        return int(request.headers.get("Content-Length") or 0)
    except ValueError:
        return 0


def signature(secret: str, body: bytes) -> str:
    """The X-C4C-Signature value a sender computes: sha256=<hex HMAC-SHA256 of the raw body>."""
    return SIGNATURE_PREFIX + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _check_signature(hook: WebhookHook, request: HttpRequest, body: bytes) -> None:
    sent = request.headers.get(SIGNATURE_HEADER)
    if not sent:
        raise HookRefused(f"Missing {SIGNATURE_HEADER} header (sha256=<hex HMAC>)", 401)
    secret = unseal(hook.sealed_secret, what=f"hook '{hook.hook_id}'")
    expected = signature(str(secret), body)
    if not hmac.compare_digest(expected.encode(), sent.strip().encode("utf-8", "replace")):
        raise HookRefused(f"{SIGNATURE_HEADER} does not match the body", 401)


def _key(hook: WebhookHook, request: HttpRequest) -> str | None:
    """The hook's idempotency key for this delivery, scoped to the hook; None when not sent."""
    value = request.headers.get(hook.idempotency_header)
    if value is None:
        return None
    key = f"hook:{hook.hook_id}:{value}"
    if not _PRINTABLE.fullmatch(value) or len(key) > IDEMPOTENCY_KEY_MAX_CHARS:
        raise BadRequest(
            f"{hook.idempotency_header} must be printable ASCII with no space at either end, "
            f"at most {IDEMPOTENCY_KEY_MAX_CHARS - len(key) + len(value)} characters"
        )
    return key


def _accepted(execution: Execution, hook_id: str, *, replayed: bool) -> JsonResponse:
    location = reverse("executions-api:detail", args=[execution.execution_id])
    response = JsonResponse(
        {"executionId": execution.execution_id, "hookId": hook_id, "location": location},
        status=202,
    )
    response["Location"] = location
    if replayed:
        response[REPLAYED_HEADER] = "true"
    return response


def _prepare(
    hook_id: str, request: HttpRequest
) -> tuple[WebhookHook, WorkflowDefinition, dict[str, Any], str | None, Execution | None]:
    """Every check before anything is written: the hook, its workflow, the run's input, the
    scoped idempotency key and the run that key already started (if any)."""
    hook = WebhookHook.objects.enabled_hook(hook_id)
    if hook is None:
        raise HookRefused(f"No enabled hook '{hook_id}'", 404)
    limit = max_bytes()
    if _declared_length(request) > limit or len(request.body) > limit:
        raise HookRefused(f"Request body is larger than C4C_HOOK_MAX_BYTES ({limit}) allows", 413)
    _check_signature(hook, request, request.body)
    if request.content_type != "application/json":
        raise HookRefused(
            f"Content-Type must be application/json, not {request.content_type or 'none'}", 415
        )
    event = json_object(request)
    if STARTED_BY in event:
        raise BadRequest(f"'{STARTED_BY}' is set by the server: it names the hook that started it")
    key = _key(hook, request)
    definition = workflow_library().get(hook.workflow_id)
    if definition is None:
        raise HookRefused(f"Hook '{hook_id}' starts workflow '{hook.workflow_id}', not found", 404)
    started = Execution.objects.by_idempotency_key(key) if key is not None else None
    return hook, definition, {**event, STARTED_BY: {"hook": hook.hook_id}}, key, started


router = Router(tags=["hooks"])


@router.post(
    "/workflow/hooks/{hook_id}",
    response={
        202: HookAccepted,
        400: ErrorBody,
        401: ErrorBody,
        404: ErrorBody,
        413: ErrorBody,
        415: ErrorBody,
        503: ErrorBody,
    },
    url_name="hook",
    summary="Start a hook's workflow with the JSON object sent as its trigger event",
    description=f"Signed, not token-authenticated: {SIGNATURE_HEADER}: sha256=<hex HMAC-SHA256 "
    "of the raw body under the hook's secret>. The run's input (its trigger node's output) is "
    f'the object sent plus "{STARTED_BY}": {{"hook": "<hookId>"}}. The same value of the '
    "hook's idempotency header (default Idempotency-Key) answers the run it first started "
    "(Idempotent-Replayed: true). Body past C4C_HOOK_MAX_BYTES: 413.",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"type": "object"}}},
        },
        "parameters": [
            {
                "name": SIGNATURE_HEADER,
                "in": "header",
                "required": True,
                "schema": {"type": "string", "pattern": "^sha256=[0-9a-f]{64}$"},
            }
        ],
    },
)
async def fire(request: HttpRequest, hook_id: str) -> HttpResponse:
    try:
        prepared = await sync_to_async(_prepare, thread_sensitive=False)(hook_id, request)
    except HookRefused as exc:
        return error(exc.message, exc.status)
    except BadRequest as exc:
        return error(exc.message, 400, errors=exc.errors)
    hook, definition, input, key, started = prepared
    if started is not None:
        return _accepted(started, hook.hook_id, replayed=True)
    try:
        execution = await dispatch.start_in_background(
            definition=definition, input=input, execution_id=None, idempotency_key=key
        )
    except store.DuplicateExecution:
        # The same delivery, sent twice at once: the other one started the run.
        again = key and await sync_to_async(Execution.objects.by_idempotency_key)(key)
        if not again:
            raise
        return _accepted(again, hook.hook_id, replayed=True)
    except dispatch.QueueFull as exc:
        response = error(str(exc), 503)
        response["Retry-After"] = "1"
        return response
    await sync_to_async(store.hook_fired, thread_sensitive=False)(hook)
    return _accepted(execution, hook.hook_id, replayed=False)
