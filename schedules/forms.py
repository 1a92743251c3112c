"""The one form a schedule is made and edited with, in the admin and on the Schedules page.

Every field is checked with the message a person can act on (workflows.schedules' checks, the
same a code declaration passes). A schedule declared in code can only be turned on or off here:
its other fields are the code's, and the next start would put them back.
"""

from typing import TYPE_CHECKING, Any

from django import forms

from workflows.library import workflow_library
from workflows.schedules import (
    cron_problem,
    input_problem,
    schedule_id_problem,
    timezone_problem,
)

from .models import Schedule, ScheduleSource

if TYPE_CHECKING:
    # django-stubs makes ModelForm generic; Django's own takes no subscript at run time.
    _ModelForm = forms.ModelForm[Schedule]
else:
    _ModelForm = forms.ModelForm


class ScheduleForm(_ModelForm):
    input = forms.JSONField(
        required=False,
        initial=dict,
        widget=forms.Textarea(attrs={"rows": 5, "spellcheck": "false"}),
        help_text="A JSON object: each run's input. startedBy (schedule and slot) is added.",
    )

    class Meta:
        model = Schedule
        fields = [
            "schedule_id",
            "workflow_id",
            "cron",
            "timezone",
            "input",
            "enabled",
            "overlap",
            "catch_up",
        ]
        labels = {
            "schedule_id": "Schedule id",
            "workflow_id": "Workflow",
            "cron": "Cron expression",
            "timezone": "Time zone",
            "catch_up": "Catch-up after downtime",
        }
        help_texts = {
            "schedule_id": "Letters, digits, - and _; it names the schedule in runs and URLs.",
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        workflows = [definition.id for definition in workflow_library().all()]
        current = self.instance.workflow_id if self.instance.pk else ""
        if current and current not in workflows:
            workflows.append(current)
        self.fields["workflow_id"] = forms.ChoiceField(
            label="Workflow",
            choices=[("", "— choose a workflow —")] + [(w, w) for w in sorted(workflows)],
            help_text="The library workflow each slot starts.",
        )
        if self.instance.pk:
            self.fields["schedule_id"].disabled = True
        if self.declared_in_code:
            for name, field in self.fields.items():
                if name != "enabled":
                    field.disabled = True

    @property
    def declared_in_code(self) -> bool:
        return bool(self.instance.pk) and self.instance.source == ScheduleSource.CODE

    def _checked(self, name: str, problem: str | None) -> Any:
        if problem:
            raise forms.ValidationError(problem, code="invalid")
        return self.cleaned_data[name]

    def clean_schedule_id(self) -> str:
        value = str(self.cleaned_data["schedule_id"])
        return str(self._checked("schedule_id", schedule_id_problem(value)))

    def clean_workflow_id(self) -> str:
        value = str(self.cleaned_data["workflow_id"])
        unknown = workflow_library().get(value) is None and not self.declared_in_code
        return str(
            self._checked("workflow_id", f"Workflow '{value}' is not defined" if unknown else None)
        )

    def clean_cron(self) -> str:
        value = " ".join(str(self.cleaned_data["cron"]).split())
        problem = cron_problem(value)
        if problem:
            raise forms.ValidationError(problem, code="invalid")
        return value

    def clean_timezone(self) -> str:
        value = str(self.cleaned_data["timezone"]).strip()
        return str(self._checked("timezone", timezone_problem(value)))

    def clean_input(self) -> dict[str, Any]:
        value = self.cleaned_data["input"]
        if value is None or value == "":
            return {}
        problem = input_problem(value)
        if problem:
            raise forms.ValidationError(problem, code="invalid")
        return dict(value)
