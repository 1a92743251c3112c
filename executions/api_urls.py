"""The c4c JSON API and SSE streams under /workflow/."""

urlpatterns: list = []
