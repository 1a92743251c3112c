"""Formatting for the dashboard templates: durations, status glyphs, pretty JSON."""

import json
from typing import Any

from django import template
from django.utils.html import json_script
from django.utils.safestring import SafeString

from ..models import Execution, ExecutionStatus
from ..serializers import stored_problem as _stored_problem

register = template.Library()

# Status is always shown as glyph + word, never by colour alone. The one copy of the table: the
# templates read it through `status_glyph`, the page scripts through `status_glyphs_script`.
STATUS_GLYPHS: dict[str, str] = {
    "running": "◔",
    "completed": "✓",
    "failed": "✕",
    "cancelled": "⊘",
    "pending": "○",
    "skipped": "↷",
    # Parked runs and node runs (workflows.waits): a run or node waiting for a signal or a child,
    # a node sleeping until its due time.
    "waiting": "‖",
    "sleeping": "☾",
    "OK": "✓",
    "ERROR": "✕",
    "UNSET": "·",
}


@register.filter
def status_glyph(status: str) -> str:
    return STATUS_GLYPHS.get(status, "•")


@register.simple_tag
def status_glyphs_script() -> SafeString:
    """STATUS_GLYPHS as a JSON <script id="status-glyphs"> for the page scripts to read."""
    return json_script(STATUS_GLYPHS, "status-glyphs")


@register.filter
def going_on(status: str) -> bool:
    """Whether a run with this status has not ended: it runs, or it waits (parked)."""
    return status in (ExecutionStatus.RUNNING, ExecutionStatus.WAITING)


@register.filter
def child_execution(detail: Any) -> str:
    """The child execution a subworkflow node's details name: the one it waits for, or the one
    whose outputs it returned; "" for any other node."""
    if not isinstance(detail, dict):
        return ""
    kind, _, child = str(detail.get("waitingFor") or "").partition(":")
    if kind == "execution":
        return child
    output = detail.get("output")
    if detail.get("nodeType") == "subworkflow" and isinstance(output, dict):
        made = output.get("executionId")
        return made if isinstance(made, str) else ""
    return ""


@register.filter
def stored_problem(execution: Execution) -> str | None:
    """Why a stored row cannot be shown (serializers.stored_problem), or None."""
    return _stored_problem(execution)


@register.filter
def duration(ms: float | int | None) -> str:
    """Milliseconds in the unit a person reads fastest: 840 ms, 12.4 s, 3 min 05 s."""
    if ms is None:
        return "—"
    if ms < 1:
        return f"{ms:.2f} ms" if ms else "0 ms"
    if ms < 1000:
        return f"{ms:.0f} ms" if ms >= 10 or float(ms).is_integer() else f"{ms:.1f} ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, seconds = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


@register.filter
def node_count(definition: Any) -> int:
    if isinstance(definition, dict):
        nodes = definition.get("nodes")
        return len(nodes) if isinstance(nodes, list) else 0
    return 0


@register.filter
def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False, default=str)


@register.filter
def span_ms(microseconds: int) -> float:
    return microseconds / 1000


@register.filter
def item(mapping: Any, key: str) -> Any:
    """`mapping[key]` for templates, which cannot index by a variable; None when absent."""
    if isinstance(mapping, dict):
        return mapping.get(key)
    return None
