"""Dashboard views."""

from django.urls import path

from . import views

app_name = "executions"

urlpatterns = [
    path("", views.home, name="home"),
    path("executions", views.execution_list, name="list"),
    path("executions/live", views.execution_list_live, name="list-live"),
    path("executions/compare", views.execution_compare, name="compare"),
    path("executions/<str:execution_id>", views.execution_detail, name="detail"),
    path("executions/<str:execution_id>/live", views.execution_detail_live, name="detail-live"),
    path("workflows", views.workflow_list, name="workflows"),
]
