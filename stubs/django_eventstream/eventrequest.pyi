from typing import Any

from django.http import HttpRequest

class EventRequest:
    class Error(ValueError): ...
    class GripError(Error): ...
    class ResumeNotAllowedError(Error): ...

    channels: set[str]
    channel_last_ids: dict[str, str]
    is_recover: bool
    user: Any
    def __init__(
        self,
        http_request: HttpRequest | None = None,
        channel_limit: int = 10,
        view_kwargs: dict[str, Any] | None = None,
    ) -> None: ...
