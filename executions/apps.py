from django.apps import AppConfig
from django.core import checks

from .conf import check_celery_app, check_event_storage


class ExecutionsConfig(AppConfig):
    name = "executions"
    verbose_name = "Executions"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        checks.register(check_event_storage)
        checks.register(check_celery_app)
        # Library patches go in here, once settings are final, never at import.
        from .live import events

        events.install()
