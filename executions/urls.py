"""Every URL of the app, for one `include("executions.urls")` in a project's URLconf."""

from django.urls import include, path

urlpatterns = [
    path("workflow/", include("executions.live.urls")),
    path("", include("executions.dashboard.urls")),
    path("", include("executions.http")),
]
