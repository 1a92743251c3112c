"""Dashboard pages."""

from django.urls import path

from . import pages

app_name = "executions"

urlpatterns = [
    path("", pages.home, name="home"),
    path("executions", pages.execution_list, name="list"),
    path("executions/live", pages.execution_list_live, name="list-live"),
    path("executions/<str:execution_id>", pages.execution_detail, name="detail"),
    path("executions/<str:execution_id>/live", pages.execution_detail_live, name="detail-live"),
    path("workflows", pages.workflow_list, name="workflows"),
]
