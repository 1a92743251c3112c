"""The Celery app for scale-out (C4C_DISPATCH=celery): `celery -A c4c_site worker`.

A worker node owns the runs it takes under one identity, `<node name>/<pid>/<boot>`, fixed in
the main process before the pool forks, so every child of a prefork pool claims runs as the node
and a restarted node (new pid or boot token) can tell its previous life's runs from its own.
When the node is ready it fails the runs its previous life left running (the rule is in
executions.store.executions_fail_interrupted).
"""

import os
import uuid
from typing import Any

from celery import Celery
from celery.signals import worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "c4c_site.settings")

app = Celery("c4c_site")
# Every CELERY_* setting, the queue (C4C_CELERY_QUEUE) included, comes from c4c_site.settings.
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

_NODE_PROCESS = f"{os.getpid()}/{uuid.uuid4().hex[:8]}"


def worker_identity(nodename: str) -> str:
    """The owner written on the runs this worker node claims."""
    return f"{nodename}/{_NODE_PROCESS}"


@worker_ready.connect
def _recover_interrupted(sender: Any, **kwargs: Any) -> None:
    from django.db import connections

    from executions.startup import recover_interrupted

    try:
        recover_interrupted(server=sender.hostname, owner=worker_identity(sender.hostname))
    finally:
        # The main process runs no tasks: hold no idle connection for the node's lifetime.
        connections.close_all()
