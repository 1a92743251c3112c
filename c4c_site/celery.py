"""The Celery app for scale-out (C4C_DISPATCH=celery): `celery -A c4c_site worker`."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "c4c_site.settings")

app = Celery("c4c_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
