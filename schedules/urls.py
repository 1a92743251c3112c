"""The Schedules pages, for one `include("schedules.urls")` in a project's URLconf."""

from django.urls import path

from . import views

app_name = "schedules"

urlpatterns = [
    path("schedules", views.schedule_list, name="schedules"),
    path("schedules/new", views.schedule_new, name="schedule-new"),
    path("schedules/<slug:schedule_id>", views.schedule_detail, name="schedule"),
    path("schedules/<slug:schedule_id>/edit", views.schedule_edit, name="schedule-edit"),
    path("schedules/<slug:schedule_id>/toggle", views.schedule_toggle, name="schedule-toggle"),
]
