"""Issuing and revoking tokens: `c4c token create|list|revoke`, and the admin (shown once, in a
message; a revoke action)."""

import re
from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.test import Client

from accounts import policy
from accounts.models import ApiToken
from c4c_site.cli import main
from tests import factories
from tests.accounts.conftest import bearer

TOKEN = re.compile(r"c4c_[0-9a-f]{8}_[A-Za-z0-9_-]{43}")


def test_token_create_prints_a_token_once_that_then_works(
    api_client: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    factories.user("ops", groups=["viewer"])

    assert main(["token", "create", "ops", "--name", "ci"]) == 0

    out, err = capsys.readouterr()
    token = out.strip()
    assert TOKEN.fullmatch(token), out
    assert "shown only this once" in err
    assert api_client.get("/workflow/executions", headers=bearer(token)).status_code == 200
    assert ApiToken.objects.get().name == "ci"


def test_token_create_for_an_unknown_user_says_so(
    transactional_db: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["token", "create", "nobody"]) == 2
    assert "No user named 'nobody'" in capsys.readouterr().err
    assert not ApiToken.objects.exists()


def test_token_list_names_tokens_by_prefix_never_in_full(
    transactional_db: None, capsys: pytest.CaptureFixture[str]
) -> None:
    ann, bob = factories.user("ann"), factories.user("bob")
    ann_token = factories.api_token(ann, name="laptop")
    factories.api_token(bob)

    assert main(["token", "list", "ann"]) == 0

    out = capsys.readouterr().out
    prefix = "_".join(ann_token.split("_")[:2])
    assert f"{prefix}  ann   laptop" in out
    assert "bob" not in out
    assert ann_token not in out


def test_token_revoke_by_prefix_or_id_and_the_token_stops_working(
    api_client: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    first = factories.api_token(permissions=[policy.VIEW])
    second = factories.api_token(permissions=[policy.VIEW])
    second_id = ApiToken.objects.order_by("id").last().pk  # type: ignore[union-attr]

    assert main(["token", "revoke", "_".join(first.split("_")[:2])]) == 0
    assert main(["token", "revoke", str(second_id)]) == 0
    assert main(["token", "revoke", str(second_id)]) == 0
    assert main(["token", "revoke", "c4c_ffffffff"]) == 2

    out, err = capsys.readouterr()
    assert out.count("Revoked token") == 2
    assert "already revoked" in out
    assert "No token with prefix or id 'c4c_ffffffff'" in err
    for token in (first, second):
        assert api_client.get("/workflow/executions", headers=bearer(token)).status_code == 401


def test_admin_issues_a_token_shown_once_in_a_message(
    auth_on: Any, transactional_db: None, admin_client: Client, client: Client
) -> None:
    owner = factories.user("svc", groups=["operator"])

    response = admin_client.post(
        "/admin/accounts/apitoken/add/", {"user": owner.pk, "name": "deploy"}, follow=True
    )

    shown = [str(m) for m in get_messages(response.wsgi_request)]
    tokens = [t for m in shown for t in TOKEN.findall(m)]
    assert len(tokens) == 1, shown
    row = ApiToken.objects.get()
    assert (row.user, row.name) == (owner, "deploy")
    assert client.get("/workflow/executions", headers=bearer(tokens[0])).status_code == 200
    page = admin_client.get(f"/admin/accounts/apitoken/{row.pk}/change/").content.decode()
    assert tokens[0] not in page
    assert row.prefix in page


def test_admin_revoke_action_revokes_the_selected_tokens(
    transactional_db: None, admin_client: Client
) -> None:
    token = factories.api_token()
    kept = factories.api_token()
    row = ApiToken.objects.get(prefix=token.split("_")[1])

    admin_client.post(
        "/admin/accounts/apitoken/",
        {"action": "revoke", "_selected_action": [row.pk]},
    )

    row.refresh_from_db()
    assert row.is_revoked
    assert not ApiToken.objects.get(prefix=kept.split("_")[1]).is_revoked


def test_a_token_cannot_be_edited_after_it_is_issued(
    transactional_db: None, admin_client: Client
) -> None:
    owner = factories.user("svc")
    factories.api_token(owner, name="deploy")
    row = ApiToken.objects.get()

    admin_client.post(
        f"/admin/accounts/apitoken/{row.pk}/change/",
        {"user": factories.user("other").pk, "name": "changed"},
    )

    row.refresh_from_db()
    assert (row.user, row.name) == (owner, "deploy")


def test_the_token_admin_needs_django_staff(transactional_db: None, client: Client) -> None:
    client.force_login(factories.user(groups=["admin"]))

    response: Any = client.get("/admin/accounts/apitoken/")

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
