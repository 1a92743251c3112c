from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

# The API and its streams first: they take most requests, and each pattern before them is tried.
urlpatterns = [
    path("", include("executions.urls")),
    path("admin/", admin.site.urls),
    path(
        "login",
        auth_views.LoginView.as_view(
            template_name="accounts/login.html", redirect_authenticated_user=True
        ),
        name="login",
    ),
    path("logout", auth_views.LogoutView.as_view(), name="logout"),
    path("", include("schedules.urls")),
]
