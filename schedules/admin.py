"""Admin: schedules made and edited with the page's form and saved through the store (so the
next slot is computed as on the page), with its newest fires read-only; fires on their own
list, filterable by status, linking to the runs they started. The schedule's page in the admin
shows its newest fires only: a per-second schedule has thousands."""

from typing import TYPE_CHECKING, Any

from django.contrib import admin
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from . import store
from .forms import ScheduleForm
from .models import Schedule, ScheduleFire

RECENT_FIRES = 20

if TYPE_CHECKING:
    _Admin = admin.ModelAdmin[Schedule]
    _FireAdmin = admin.ModelAdmin[ScheduleFire]
else:
    _Admin = admin.ModelAdmin
    _FireAdmin = admin.ModelAdmin


def _run_link(fire: ScheduleFire) -> str:
    if not fire.execution_id:
        return "—"
    url = reverse("executions:detail", args=[fire.execution_id])
    return format_html('<a href="{}">{}</a>', url, fire.execution_id)


@admin.register(Schedule)
class ScheduleAdmin(_Admin):
    form = ScheduleForm
    list_display = (
        "schedule_id",
        "workflow_id",
        "cron",
        "timezone",
        "enabled",
        "overlap",
        "catch_up",
        "source",
        "next_slot",
        "last_slot",
    )
    list_filter = ("enabled", "source", "overlap", "catch_up")
    search_fields = ("schedule_id", "workflow_id")
    readonly_fields = (
        "source",
        "created_at",
        "updated_at",
        "next_slot",
        "last_slot",
        "recent_fires",
    )

    @admin.display(description="newest fires")
    def recent_fires(self, schedule: Schedule) -> str:
        fires = ScheduleFire.objects.recent_of(schedule, RECENT_FIRES) if schedule.pk else []
        if not fires:
            return "—"
        return format_html_join(
            "\n",
            "<div>{} · {} · {}</div>",
            ((fire.slot.isoformat(), fire.get_status_display(), _run_link(fire)) for fire in fires),
        )

    def save_model(self, request: HttpRequest, obj: Schedule, form: Any, change: bool) -> None:
        store.schedule_save(schedule=obj)


@admin.register(ScheduleFire)
class ScheduleFireAdmin(_FireAdmin):
    list_display = ("schedule", "slot", "status", "run", "note", "fired_by", "updated_at")
    list_filter = ("status", "schedule")
    list_select_related = ("schedule",)
    date_hierarchy = "slot"
    readonly_fields = (
        "schedule",
        "slot",
        "status",
        "execution_id",
        "note",
        "fired_by",
        "created_at",
        "updated_at",
    )

    @admin.display(description="run")
    def run(self, fire: ScheduleFire) -> str:
        return _run_link(fire)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
