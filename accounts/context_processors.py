"""Whether sign-in is required, for the header every page shares (base.html)."""

from typing import Any

from django.conf import settings
from django.http import HttpRequest


def auth_mode(request: HttpRequest) -> dict[str, Any]:
    return {"c4c_auth_required": settings.C4C_REQUIRE_AUTH}
