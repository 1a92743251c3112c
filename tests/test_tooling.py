"""What tests/conftest.py sets up for the whole suite, and what it must not leak into production."""

from django.conf import global_settings
from django.contrib.auth.hashers import identify_hasher, make_password

import c4c_site.settings as production


def test_tests_hash_passwords_with_the_fast_hasher() -> None:
    assert identify_hasher(make_password("secret")).algorithm == "md5"


def test_production_settings_never_name_the_fast_hasher() -> None:
    hashers = getattr(production, "PASSWORD_HASHERS", global_settings.PASSWORD_HASHERS)
    assert not any("MD5" in hasher for hasher in hashers)
