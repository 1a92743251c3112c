"""API tokens: per-user bearer credentials for the JSON API and the SSE streams.

A token is `c4c_<prefix>_<secret>`: the prefix (8 hex characters) is stored in clear so a token
can be named in lists, logs and `c4c token revoke`; the whole token is kept only as its SHA-256.
The secret is 32 random bytes (`secrets.token_urlsafe`), so a fast hash is enough: nobody can
guess their way back from it, and the lookup is one indexed query. The token is shown once, when
it is issued, and never again. Revoking sets `revoked_at`; the row stays, for the record.
"""

import hashlib
import secrets
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone

TOKEN_PREFIX = "c4c_"
# The last-used time is written at most this often per token, not on every request.
TOUCH_INTERVAL = timedelta(minutes=1)


def token_digest(token: str) -> str:
    """The SHA-256 (hex) a token is stored and looked up as."""
    return hashlib.sha256(token.encode()).hexdigest()


class ApiTokenQuerySet(models.QuerySet["ApiToken"]):
    def active(self) -> "ApiTokenQuerySet":
        return self.filter(revoked_at__isnull=True, user__is_active=True)

    def issue(self, user: Any, name: str = "") -> tuple["ApiToken", str]:
        """A new token for `user`: the row and the full token, which is never shown again."""
        row = ApiToken(user=user, name=name)
        token = row.new_secret()
        row.save()
        return row, token

    async def aauthenticate(self, token: str) -> "ApiToken | None":
        """The live token (not revoked, its user active) this bearer token is, its use noted."""
        if not token.startswith(TOKEN_PREFIX):
            return None
        matching = self.active().select_related("user").filter(key_hash=token_digest(token))
        row = await matching.afirst()
        if row is not None:
            await row.atouch()
        return row

    def by_reference(self, reference: str) -> "ApiToken | None":
        """The token a person names: its prefix (as listed), or its id."""
        found = self.filter(prefix=reference.removeprefix(TOKEN_PREFIX)).first()
        if found is None and reference.isdigit():
            found = self.filter(pk=int(reference)).first()
        return found


class ApiToken(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100, blank=True, help_text="What the token is for.")
    prefix = models.CharField(
        max_length=16, unique=True, editable=False, help_text="Shown to tell tokens apart."
    )
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "API token"

    def __str__(self) -> str:
        label = f"{TOKEN_PREFIX}{self.prefix}…"
        return f"{label} ({self.name})" if self.name else label

    def new_secret(self) -> str:
        """Gives this unsaved token its prefix and hash; returns the full token, to show once."""
        prefix = secrets.token_hex(4)
        while ApiToken.objects.filter(prefix=prefix).exists():
            prefix = secrets.token_hex(4)
        token = f"{TOKEN_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
        self.prefix, self.key_hash = prefix, token_digest(token)
        return token

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    async def atouch(self) -> None:
        """Notes the use, unless it was noted less than TOUCH_INTERVAL ago."""
        now = timezone.now()
        if self.last_used_at is not None and now - self.last_used_at < TOUCH_INTERVAL:
            return
        self.last_used_at = now
        await ApiToken.objects.filter(pk=self.pk).aupdate(last_used_at=now)

    def revoke(self) -> bool:
        """Revokes the token; False when it already was."""
        updated = ApiToken.objects.filter(pk=self.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
        self.refresh_from_db(fields=["revoked_at"])
        return updated == 1
