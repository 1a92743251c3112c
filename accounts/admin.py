"""Admin: issue API tokens (the full token is shown once, in a message) and revoke them.

A token is never edited: its user and name are chosen when it is added, its secret is never
stored, and revoking (the action, or `c4c token revoke`) is the only change afterwards.
"""

from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from .models import TOKEN_PREFIX, ApiToken

if TYPE_CHECKING:
    # django-stubs makes these generic; Django's own take no subscript at run time.
    _Admin = admin.ModelAdmin[ApiToken]
    _Form = forms.ModelForm[ApiToken]
else:
    _Admin = admin.ModelAdmin
    _Form = forms.ModelForm


class ApiTokenForm(_Form):
    class Meta:
        model = ApiToken
        fields = ("user", "name")


@admin.register(ApiToken)
class ApiTokenAdmin(_Admin):
    form = ApiTokenForm
    list_display = ("__str__", "user", "created_at", "last_used_at", "revoked_at")
    list_filter = (("revoked_at", admin.EmptyFieldListFilter),)
    search_fields = ("prefix", "name", "user__username")
    readonly_fields = ("user", "name", "prefix", "created_at", "last_used_at", "revoked_at")
    actions = ("revoke",)

    def get_readonly_fields(self, request: HttpRequest, obj: ApiToken | None = None) -> Any:
        return () if obj is None else self.readonly_fields

    def get_fields(self, request: HttpRequest, obj: ApiToken | None = None) -> Any:
        return ("user", "name") if obj is None else self.readonly_fields

    def save_model(self, request: HttpRequest, obj: ApiToken, form: Any, change: bool) -> None:
        if change:
            return
        token = obj.new_secret()
        super().save_model(request, obj, form, change)
        messages.warning(
            request,
            f"The new token is {token} - copy it now: it is shown only this once. "
            "Send it as 'Authorization: Bearer <token>'.",
        )

    def has_change_permission(self, request: HttpRequest, obj: ApiToken | None = None) -> bool:
        # Viewing stays; editing a token's user or name after the fact is not a thing.
        return obj is None and super().has_change_permission(request, obj)

    @admin.action(description="Revoke the selected tokens", permissions=["change"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        revoked = [token for token in queryset if token.revoke()]
        names = ", ".join(f"{TOKEN_PREFIX}{token.prefix}" for token in revoked)
        self.message_user(
            request,
            f"Revoked {len(revoked)} token(s){': ' + names if names else ''}.",
            messages.SUCCESS,
        )
