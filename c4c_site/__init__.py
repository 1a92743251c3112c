"""The project: settings, URLs, the ASGI entry point and its Celery app.

The Celery app is loaded with Django (Celery's documented pattern), so it is `current_app` for
the executions app's tasks and publisher in every process: web servers send runs through it.
"""

from .celery import app as celery_app

__all__ = ("celery_app",)
