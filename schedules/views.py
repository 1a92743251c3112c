"""The Schedules pages: the list (next and last run of each), one schedule (its next five slots
and newest fires with their runs), the form that makes or edits one, and the on/off switch.

Reading needs executions.view_execution, every page that writes executions.manage_c4c
(accounts.policy). A form with a mistake comes back with each field's message and status 400.
"""

from typing import Any

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from accounts.policy import MANAGE
from executions.models import Execution

from . import store
from .forms import ScheduleForm
from .models import FireStatus, Schedule, ScheduleFire
from .slots import local

UPCOMING = 5
RECENT_FIRES = 20
# The chip a fire without a run shows, in the dashboard's status styles.
FIRE_CHIPS = {
    FireStatus.PENDING: "pending",
    FireStatus.QUEUED: "pending",
    FireStatus.SKIPPED: "skipped",
    FireStatus.FAILED: "failed",
}


def _may_manage(request: HttpRequest) -> bool:
    """Whether to offer the buttons that write (the policy refuses them to others anyway)."""
    return not getattr(settings, "C4C_REQUIRE_AUTH", False) or request.user.has_perm(MANAGE)


def _schedule(schedule_id: str) -> Schedule:
    schedule = Schedule.objects.by_schedule_id(schedule_id)
    if schedule is None:
        raise Http404(f"No schedule '{schedule_id}'")
    return schedule


def _fire_row(fire: ScheduleFire, zone: str) -> dict[str, Any]:
    execution: Execution | None = fire.execution
    return {
        "slot": local(fire.slot, zone),
        "slot_iso": fire.slot.isoformat(),
        "fire": fire,
        "execution": execution,
        "chip": FIRE_CHIPS.get(FireStatus(fire.status), "pending"),
    }


@require_http_methods(["GET", "HEAD"])
def schedule_list(request: HttpRequest) -> HttpResponse:
    """Every schedule with its next slot and its newest fire's run: three queries."""
    schedules = list(Schedule.objects.with_last_fire())
    last_ids = {s.pk: getattr(s, "last_execution_id", None) or "" for s in schedules}
    statuses = Execution.objects.statuses([i for i in last_ids.values() if i])
    rows = [
        {
            "schedule": schedule,
            "next": local(schedule.next_slot, schedule.timezone) if schedule.enabled else "",
            "last": local(schedule.last_slot, schedule.timezone) if schedule.last_slot else "",
            "last_execution_id": last_ids[schedule.pk],
            "last_status": statuses.get(last_ids[schedule.pk]),
            "last_fire_status": getattr(schedule, "last_fire_status", None),
        }
        for schedule in schedules
    ]
    context = {"rows": rows, "manage": _may_manage(request)}
    return render(request, "schedules/list.html", context)


@require_http_methods(["GET", "HEAD"])
def schedule_detail(request: HttpRequest, schedule_id: str) -> HttpResponse:
    schedule = _schedule(schedule_id)
    zone = schedule.timezone
    context = {
        "schedule": schedule,
        "upcoming": [local(slot, zone) for slot in schedule.upcoming(UPCOMING, timezone.now())],
        "fires": [
            _fire_row(f, zone) for f in ScheduleFire.objects.recent_of(schedule, RECENT_FIRES)
        ],
        "last_slot": local(schedule.last_slot, zone),
        "manage": _may_manage(request),
    }
    return render(request, "schedules/detail.html", context)


def _form_page(
    request: HttpRequest, form: ScheduleForm, *, schedule: Schedule | None
) -> HttpResponse:
    status = 400 if form.is_bound and form.errors else 200
    for name in form.errors:
        if name in form.fields:
            form.fields[name].widget.attrs["aria-invalid"] = "true"
    context = {"form": form, "schedule": schedule, "manage": True}
    return render(request, "schedules/form.html", context, status=status)


@require_http_methods(["GET", "HEAD", "POST"])
def schedule_new(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return _form_page(request, ScheduleForm(), schedule=None)
    form = ScheduleForm(request.POST)
    if not form.is_valid():
        return _form_page(request, form, schedule=None)
    schedule = store.schedule_save(schedule=form.save(commit=False))
    return redirect("schedules:schedule", schedule.schedule_id)


@require_http_methods(["GET", "HEAD", "POST"])
def schedule_edit(request: HttpRequest, schedule_id: str) -> HttpResponse:
    schedule = _schedule(schedule_id)
    if request.method != "POST":
        return _form_page(request, ScheduleForm(instance=schedule), schedule=schedule)
    form = ScheduleForm(request.POST, instance=schedule)
    if not form.is_valid():
        return _form_page(request, form, schedule=schedule)
    store.schedule_save(schedule=form.save(commit=False))
    return redirect("schedules:schedule", schedule.schedule_id)


@require_POST
def schedule_toggle(request: HttpRequest, schedule_id: str) -> HttpResponse:
    """Turn a schedule on (from its next slot after now) or off; back to where the button was."""
    schedule = _schedule(schedule_id)
    store.schedule_set_enabled(schedule=schedule, enabled=not schedule.enabled)
    back = request.POST.get("next", "")
    if back and url_has_allowed_host_and_scheme(
        back, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return redirect(back)
    return redirect("schedules:schedule", schedule.schedule_id)
