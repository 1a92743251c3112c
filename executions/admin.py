"""Admin: inspect executions with their node runs and spans, read-only (the store writes them),
and delete finished ones through the store (executions.store.executions_delete), one or many:
their node runs, spans and counters go with them exactly as when pruning. A running execution
cannot be deleted (cancel it first); the admin says so and deletes nothing.
"""

from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.contrib.admin.actions import delete_selected
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html

from . import store
from .models import (
    EXECUTION_TRANSITIONS,
    Execution,
    NodeExecution,
    Span,
    WebhookHook,
    unfinished,
)

if TYPE_CHECKING:
    # django-stubs makes the admin classes generic; Django's own take no subscript at run time.
    _Inline = admin.TabularInline[NodeExecution | Span, Execution]
    _Admin = admin.ModelAdmin[Execution]
else:
    _Inline = admin.TabularInline
    _Admin = admin.ModelAdmin


class _ReadOnlyInline(_Inline):
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class NodeExecutionInline(_ReadOnlyInline):
    model = NodeExecution
    ordering = ["sequence", "id"]
    fields = (
        "sequence",
        "node_id",
        "node_type",
        "procedure_name",
        "status",
        "started_at",
        "duration_ms",
        "input",
        "output",
        "error",
    )
    readonly_fields = fields


class SpanInline(_ReadOnlyInline):
    model = Span
    ordering = ["start_time_us", "id"]
    fields = ("name", "span_id", "parent_span_id", "kind", "status_code", "duration", "attributes")
    readonly_fields = fields

    @admin.display(description="duration (ms)")
    def duration(self, span: Span) -> str:
        return f"{span.duration_ms:.3f}"


@admin.register(Execution)
class ExecutionAdmin(_Admin):
    list_display = ["execution_id", "workflow_id", "status", "started_at", "execution_time_ms"]
    list_filter = ["status", "workflow_id"]
    search_fields = ["execution_id"]
    date_hierarchy = "started_at"
    ordering = ["-started_at", "-id"]
    inlines = [NodeExecutionInline, SpanInline]
    # The sealed secrets are ciphertext: nothing to read, and no reason to show it to anyone.
    exclude = ["sealed_secrets"]
    readonly_fields = [
        *(f.name for f in Execution._meta.fields if f.name != "sealed_secrets"),
        "dashboard",
    ]
    show_full_result_count = False

    @admin.display(description="Dashboard")
    def dashboard(self, execution: Execution) -> str:
        url = reverse("executions:detail", args=[execution.execution_id])
        return format_html('<a href="{}">Open on the dashboard</a>', url)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        """Django's "delete selected" (its confirmation page posts that name back), refusing a
        selection with running executions first (delete_finished)."""
        actions: dict[str, Any] = dict(super().get_actions(request))
        if "delete_selected" in actions:
            _, name, description = actions["delete_selected"]
            actions[name] = (type(self).delete_finished, name, description)
        return actions

    def delete_finished(
        self, request: HttpRequest, queryset: QuerySet[Execution]
    ) -> HttpResponse | None:
        running = queryset.filter(status__in=unfinished(EXECUTION_TRANSITIONS)).count()
        if running:
            verb = "is" if running == 1 else "are"
            which = f"{running} of the {queryset.count()} selected executions {verb}"
            self.message_user(request, _running_message(which), messages.ERROR)
            return None
        return delete_selected(self, request, queryset)

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        execution = self.get_object(request, object_id)
        if execution is not None and execution.status in unfinished(EXECUTION_TRANSITIONS):
            self.message_user(request, _running_message("This execution is"), messages.ERROR)
            change = reverse("admin:executions_execution_change", args=[execution.pk])
            return HttpResponseRedirect(change)
        return super().delete_view(request, object_id, extra_context)

    def delete_model(self, request: HttpRequest, obj: Execution) -> None:
        store.executions_delete(pks=[obj.pk])

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Execution]) -> None:
        store.executions_delete(pks=list(queryset.values_list("pk", flat=True)))


def _running_message(which: str) -> str:
    return f"{which} still running and cannot be deleted: cancel, then delete. Nothing was deleted."


# Webhooks ---------------------------------------------------------------------------------------

if TYPE_CHECKING:
    _HookAdmin = admin.ModelAdmin[WebhookHook]
else:
    _HookAdmin = admin.ModelAdmin


def _secret_message(hook: WebhookHook, secret: str) -> str:
    return (
        f"The secret of hook '{hook.hook_id}' is {secret} - copy it now: it is shown only this "
        "once. Sign each POST /workflow/hooks/<hookId> with it: X-C4C-Signature: sha256=<hex "
        "HMAC-SHA256 of the raw body>."
    )


@admin.register(WebhookHook)
class WebhookHookAdmin(_HookAdmin):
    """Hooks (executions.api.hooks): the secret is made by the store and shown once, on adding
    and on "rotate secret"; only its sealed form is kept, and no page shows it again."""

    list_display = ("hook_id", "workflow_id", "enabled", "created_at", "last_fired_at")
    list_filter = ("enabled",)
    search_fields = ("hook_id", "workflow_id")
    fields = ("hook_id", "workflow_id", "enabled", "idempotency_header")
    actions = ("rotate_secret",)

    def save_model(self, request: HttpRequest, obj: WebhookHook, form: Any, change: bool) -> None:
        secret = store.hook_save(obj)
        if secret is not None:
            messages.warning(request, _secret_message(obj, secret))

    def delete_model(self, request: HttpRequest, obj: WebhookHook) -> None:
        store.hooks_delete(pks=[obj.pk])

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[WebhookHook]) -> None:
        store.hooks_delete(pks=list(queryset.values_list("pk", flat=True)))

    @admin.action(description="Rotate the secret of the selected hooks", permissions=["change"])
    def rotate_secret(self, request: HttpRequest, queryset: QuerySet[WebhookHook]) -> None:
        for hook in queryset:
            messages.warning(request, _secret_message(hook, store.hook_rotate_secret(hook)))
