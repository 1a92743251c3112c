"""The project: settings, URLs, the ASGI entry point and its Celery app.

The Celery app (c4c_site.celery) is not loaded with Django, as Celery's documented pattern
would: a web process on inline dispatch never needs it, and it is 5.5 MiB of that process
(BENCHMARKS.md). `celery -A c4c_site` finds it by name, and a web process that sends runs to
workers imports it at the first send (C4C_CELERY_APP).
"""
