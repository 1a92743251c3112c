from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import URLPattern, URLResolver, include, path

# The app's URLs first: its API and streams take most requests, and every pattern before them
# is tried on each one.
urlpatterns: list[URLPattern | URLResolver] = [
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
