"""The c4c JSON API under /workflow/ (the streams beside it are executions.live.urls)."""

from django.urls import path

from . import views

app_name = "executions-api"

urlpatterns = [
    path("execute", views.execute, name="execute"),
    path("executions", views.executions, name="list"),
    path("executions/<str:execution_id>", views.execution, name="detail"),
    path("executions/<str:execution_id>/cancel", views.cancel, name="cancel"),
    path("definitions", views.definitions, name="definitions"),
    path("definitions/<str:workflow_id>", views.definition, name="definition"),
    path("validate", views.validate, name="validate"),
]
