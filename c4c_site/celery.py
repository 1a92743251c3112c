"""The Celery app for scale-out (C4C_DISPATCH=celery): `celery -A c4c_site worker`.

Every process of a worker node holds the runs it claims under a lease of its own (executions.
leases): a pool process killed mid-run (an OOM kill) stops renewing, and once the lease lapses
any worker or web process takes the run over and it resumes. The node's main process runs no
tasks; from the moment it is ready it sweeps for such runs and queues them again. Beat prunes
what retention says has expired (executions.tasks.prune).
"""

import os
from typing import Any

from celery import Celery
from celery.signals import worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "c4c_site.settings")

app = Celery("c4c_site")
# Every CELERY_* setting, the queue (C4C_CELERY_QUEUE) and the broker timeouts included, comes
# from c4c_site.settings.
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_configure.connect
def _prune_on_beat(sender: Celery, **kwargs: Any) -> None:
    """Scaled out, pruning runs here: `celery -A c4c_site beat` sends executions.prune every
    C4C_PRUNE_INTERVAL_SECONDS (it deletes nothing while no retention is set). Run one beat; a
    second would only prune twice, which is safe."""
    from executions.conf import app_settings

    sender.add_periodic_task(
        app_settings.C4C_PRUNE_INTERVAL_SECONDS,
        sender.signature("executions.prune"),
        name="c4c-prune",
    )


@worker_ready.connect
def _sweep_from_the_node(sender: Any, **kwargs: Any) -> None:
    from executions.startup import start_sweeping
    from schedules.startup import start_scheduling

    start_sweeping(requeue=True)
    start_scheduling()
