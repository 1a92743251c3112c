from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("workflow/", include("executions.api_urls")),
    path("", include("executions.page_urls")),
]
