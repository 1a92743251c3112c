from django.apps import AppConfig
from django.core import checks


class SchedulesConfig(AppConfig):
    name = "schedules"
    verbose_name = "Schedules"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from .declared import check_declarations

        checks.register(check_declarations)
