"""Whether authentication is on, from where the server listens and which hosts it answers.

Pure Python, imported by settings (before Django is set up) and by `c4c serve` (before settings):
on loopback the service may stay open for a zero-friction first run; anywhere else it must not.
"""

import ipaddress
from collections.abc import Iterable

FALSE_WORDS = frozenset({"0", "false", "no", "off"})


def is_loopback(host: str) -> bool:
    """`localhost`, 127.0.0.0/8 or ::1 (brackets allowed); any other name or address is not."""
    bare = host.strip().removeprefix("[").removesuffix("]")
    if bare.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(bare).is_loopback
    except ValueError:
        return False


def auth_needed(bind_host: str, allowed_hosts: Iterable[str]) -> bool:
    """On by default when the server listens beyond loopback or answers a non-loopback name."""
    return not is_loopback(bind_host) or not all(is_loopback(host) for host in allowed_hosts)


def turned_off(value: str | None) -> bool:
    """C4C_REQUIRE_AUTH's value says false explicitly (unset is not false)."""
    return value is not None and value.strip().lower() in FALSE_WORDS


def public_bind_refusal(bind_host: str) -> str:
    return (
        f"Refusing to serve on {bind_host} with C4C_REQUIRE_AUTH=false: anyone who can reach "
        "the port could run, read and cancel workflows. Serve on 127.0.0.1, or leave "
        "C4C_REQUIRE_AUTH unset (or true) and sign in with an account or API token."
    )
