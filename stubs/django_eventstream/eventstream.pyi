from typing import Any, Protocol

from redis import Redis

class _Publish(Protocol):
    def __call__(
        self,
        channel: str,
        event_type: str,
        data: Any,
        pub_id: str | None,
        pub_prev_id: str | None,
        skip_user_ids: list[str] | None = None,
        **publish_kwargs: Any,
    ) -> None: ...

redis_client: Redis | None
publish_event: _Publish

def send_event(
    channel: str,
    event_type: str,
    data: Any,
    skip_user_ids: list[str] | None = None,
    async_publish: bool = True,
    json_encode: bool = True,
) -> None: ...
