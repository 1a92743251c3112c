"""C4C_REQUIRE_AUTH: off on loopback by default, on by itself beyond it, and a public bind with it
set to false refused - by settings, and by `c4c serve` before anything starts."""

import os
import subprocess
from pathlib import Path

import pytest

from accounts.binding import auth_needed, is_loopback
from tests.conftest import C4C, ROOT
from tests.test_settings import _refused, _settings

KEY = {"DJANGO_SECRET_KEY": "k" * 40}


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.4", False),
        ("example.com", False),
    ],
)
def test_loopback_is_localhost_127_slash_8_and_ipv6_one(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_auth_is_off_by_default_on_loopback(tmp_path: Path) -> None:
    values = _settings({"DJANGO_SECRET_KEY_FILE": str(tmp_path / "key")})

    assert values.C4C_REQUIRE_AUTH is False
    assert values.C4C_BIND_HOST == "127.0.0.1"


def test_auth_is_on_by_itself_on_a_public_bind(tmp_path: Path) -> None:
    env = {"C4C_BIND_HOST": "0.0.0.0", "DJANGO_SECRET_KEY_FILE": str(tmp_path / "key")}

    assert _settings(env).C4C_REQUIRE_AUTH is True


def test_auth_is_on_by_itself_when_allowed_hosts_name_a_public_host() -> None:
    env = {"DJANGO_ALLOWED_HOSTS": "c4c.example.com", **KEY}

    assert _settings(env).C4C_REQUIRE_AUTH is True
    assert auth_needed("127.0.0.1", ["localhost", "c4c.example.com"])


def test_auth_can_be_turned_on_on_loopback(tmp_path: Path) -> None:
    env = {"C4C_REQUIRE_AUTH": "true", "DJANGO_SECRET_KEY_FILE": str(tmp_path / "key")}

    assert _settings(env).C4C_REQUIRE_AUTH is True


def test_settings_refuse_a_public_bind_with_auth_set_to_false(tmp_path: Path) -> None:
    env = {"C4C_BIND_HOST": "0.0.0.0", "C4C_REQUIRE_AUTH": "false", **KEY}

    assert "Refusing to serve on 0.0.0.0 with C4C_REQUIRE_AUTH=false" in _refused(env)


@pytest.mark.slow
def test_serve_refuses_a_public_bind_without_auth_before_starting(tmp_path: Path) -> None:
    env = {**os.environ, "C4C_REQUIRE_AUTH": "false", "DATABASE_URL": f"sqlite:///{tmp_path}/db"}

    result = subprocess.run(
        [str(C4C), "serve", "--host", "0.0.0.0", "--port", "1"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 2
    assert "Refusing to serve on 0.0.0.0 with C4C_REQUIRE_AUTH=false" in result.stderr
    assert not (tmp_path / "db").exists()
