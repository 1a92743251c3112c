"""The two SSE streams under /workflow/."""

from django.urls import path

from . import streams

app_name = "executions-live"

urlpatterns = [
    path("executions-stream", streams.executions_stream, name="stream"),
    path("executions/<str:execution_id>/stream", streams.execution_stream, name="detail-stream"),
]
