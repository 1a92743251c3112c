"""The adopter's URLs: their own app and admin, and c4c's pages, API and streams."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("orders/", include("orders.urls")),
    path("", include("executions.urls")),  # c4c
]
