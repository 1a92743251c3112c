"""The c4c JSON API and SSE streams under /workflow/."""

from django.urls import path

from . import api, streams

app_name = "executions-api"

urlpatterns = [
    path("execute", api.execute, name="execute"),
    path("executions", api.executions, name="list"),
    path("executions-stream", streams.executions_stream, name="stream"),
    path("executions/<str:execution_id>", api.execution, name="detail"),
    path("executions/<str:execution_id>/stream", streams.execution_stream, name="detail-stream"),
    path("executions/<str:execution_id>/cancel", api.cancel, name="cancel"),
    path("definitions", api.definitions, name="definitions"),
    path("definitions/<str:workflow_id>", api.definition, name="definition"),
    path("validate", api.validate, name="validate"),
]
