"""Pages with C4C_REQUIRE_AUTH on: sign-in first (a redirect with ?next=), then view_execution;
the login page in the dashboard's style; the header says who is signed in, or that the service is
open on loopback; repeated failed sign-ins (admin and dashboard) are locked out by django-axes."""

from typing import Any

import pytest
from django.test import Client

from tests import factories

PAGES = ["/", "/executions", "/executions/page-run", "/workflows", "/executions/live"]


@pytest.fixture
def run(transactional_db: None) -> None:
    factories.finished_run(execution_id="page-run")


@pytest.mark.parametrize("path", PAGES)
def test_a_page_without_sign_in_redirects_to_login_with_next(
    auth_on: Any, run: None, client: Client, path: str
) -> None:
    response = client.get(path)

    assert response.status_code == 302
    assert response["Location"] == f"/login?next={path}"


@pytest.mark.parametrize("path", PAGES)
def test_a_page_for_a_signed_in_viewer_answers(
    auth_on: Any, run: None, client: Client, path: str
) -> None:
    client.force_login(factories.user(groups=["viewer"]))

    assert client.get(path, follow=True).status_code == 200


def test_a_signed_in_user_without_view_permission_gets_403(
    auth_on: Any, transactional_db: None, client: Client
) -> None:
    client.force_login(factories.user())

    response = client.get("/executions")

    assert response.status_code == 403


def test_a_viewer_refused_a_page_that_changes_schedules_is_told_the_permission_it_lacks(
    auth_on: Any, transactional_db: None, client: Client
) -> None:
    client.force_login(factories.user(groups=["viewer"]))

    response = client.get("/schedules/new")

    assert response.status_code == 403
    assert "executions.manage_c4c" in response.content.decode()


def test_signing_in_on_the_login_page_goes_on_to_next(
    auth_on: Any, transactional_db: None, client: Client
) -> None:
    factories.user("vera", groups=["viewer"])
    page = client.get("/login?next=/workflows")
    assert page.status_code == 200
    assert [t.name for t in page.templates][:2] == ["accounts/login.html", "executions/base.html"]

    response = client.post(
        "/login", {"username": "vera", "password": "password", "next": "/workflows"}
    )

    assert response.status_code == 302
    assert response["Location"] == "/workflows"
    html = client.get("/workflows").content.decode()
    assert '<span class="account-user">vera</span>' in html
    assert 'action="/logout"' in html


def test_a_wrong_password_shows_the_form_again_with_an_error(
    auth_on: Any, transactional_db: None, client: Client
) -> None:
    factories.user("vera", groups=["viewer"])

    response = client.post("/login", {"username": "vera", "password": "wrong"})

    assert response.status_code == 200
    assert b'role="alert"' in response.content
    assert client.get("/executions").status_code == 302


def test_signing_out_ends_the_session(auth_on: Any, transactional_db: None, client: Client) -> None:
    client.force_login(factories.user(groups=["viewer"]))

    response = client.post("/logout")

    assert response.status_code == 302
    assert response["Location"] == "/login"
    assert client.get("/executions").status_code == 302


def test_with_auth_off_pages_are_open_and_the_header_says_so(
    transactional_db: None, client: Client, settings: Any
) -> None:
    settings.C4C_REQUIRE_AUTH = False

    html = client.get("/executions").content.decode()

    assert "Open on loopback: no sign-in required" in html
    assert "Sign out" not in html


def test_admin_stays_djangos_staff_login(
    auth_on: Any, transactional_db: None, client: Client
) -> None:
    assert client.get("/admin/").headers["Location"].startswith("/admin/login/")
    client.force_login(factories.user(groups=["admin"]))
    assert client.get("/admin/").headers["Location"].startswith("/admin/login/")


@pytest.mark.parametrize("login_path", ["/admin/login/", "/login"])
def test_repeated_failed_sign_ins_lock_the_account_out(
    transactional_db: None, client: Client, settings: Any, login_path: str
) -> None:
    factories.user("root", is_staff=True, is_superuser=True)
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert client.post(login_path, {"username": "root", "password": "guess"}).status_code == 200

    locked = client.post(login_path, {"username": "root", "password": "guess"})
    assert locked.status_code == 429
    # Locked out, even the right password is refused until the cool-off ends.
    right = client.post(login_path, {"username": "root", "password": "password"})
    assert right.status_code == 429
    assert "_auth_user_id" not in client.session
