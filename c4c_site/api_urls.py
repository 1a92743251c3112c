"""The URLconf of the API's requests (c4c_site.api_handler): c4c_site.urls, the API first.

Django tries a URLconf's patterns in order. In c4c_site.urls the dashboard's come before the
API's, since django-ninja always adds a root pattern ("") that would otherwise answer "/" in the
dashboard's place; so each API request tried the dashboard's patterns first (17 patterns for
POST /workflow/execute, ~25 us a request). The API's handler serves only API paths, never "/", so
here its patterns come first; the site's follow, so every name reverses as in c4c_site.urls.
"""

from django.urls import URLPattern, URLResolver, include, path

from . import urls

urlpatterns: list[URLPattern | URLResolver] = [
    # The streams first: the API's catch-all JSON 404 answers every other /workflow/ path.
    path("workflow/", include("executions.live.urls")),
    path("", include("executions.http")),
    *urls.urlpatterns,
]
