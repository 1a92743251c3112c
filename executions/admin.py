"""Admin: inspect executions with their node runs and spans, read-only (the store writes them)."""

from typing import TYPE_CHECKING, Any

from django.contrib import admin
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from .models import Execution, NodeExecution, Span

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
    readonly_fields = [f.name for f in Execution._meta.fields] + ["dashboard"]
    show_full_result_count = False

    @admin.display(description="Dashboard")
    def dashboard(self, execution: Execution) -> str:
        url = reverse("executions:detail", args=[execution.execution_id])
        return format_html('<a href="{}">Open on the dashboard</a>', url)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Deleting here would bypass the store and leave the status counters wrong."""
        return False
