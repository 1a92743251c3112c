from collections.abc import Mapping
from typing import Any, Protocol

from django.http import HttpRequest

from .eventstream import _Publish
from .storage import StorageBase

class _Headers(Protocol):
    def __setitem__(self, key: str, value: str, /) -> None: ...

# channel:id[,channel:id...] -> {channel: id}; ValueError when a part is not one channel:id.
def parse_last_event_id(s: str, /) -> dict[str, str]: ...
def make_id(ids: Mapping[str, object]) -> str: ...
def build_id_escape(s: str, /) -> str: ...
def sse_encode_event(
    event_type: str,
    data: Any,
    event_id: str | None = None,
    escape: bool = False,
    json_encode: bool = False,
) -> str: ...

publish_event: _Publish

# The instance of settings.EVENTSTREAM_STORAGE_CLASS (None without the setting, which
# c4c_site.settings and the embedding project always give).
def get_storage() -> StorageBase: ...
def add_default_headers(headers: _Headers, request: HttpRequest) -> None: ...
