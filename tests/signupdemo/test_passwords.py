"""The site's password hashing (the tests themselves use a fast hasher)."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import check_password, identify_hasher, make_password

from signupdemo import settings as site_settings

pytestmark = pytest.mark.django_db


@pytest.fixture
def site_hashers(settings):
    settings.PASSWORD_HASHERS = site_settings.PASSWORD_HASHERS


def test_passwords_are_hashed_with_argon2id_at_owasp_parameters(site_hashers):
    encoded = make_password("correct-horse-battery-staple")
    assert encoded.startswith("argon2$argon2id$v=19$m=19456,t=2,p=1$")
    assert check_password("correct-horse-battery-staple", encoded)
    assert not check_password("correct-horse-battery-stapler", encoded)


def test_older_hashes_still_log_in_and_are_upgraded(site_hashers):
    user = get_user_model().objects.create(username="ada@example.com")
    user.password = make_password("old secret", hasher="pbkdf2_sha256")
    user.save()
    assert user.check_password("old secret")  # rehashes on success
    user.refresh_from_db()
    assert identify_hasher(user.password).algorithm == "argon2"
    assert user.check_password("old secret")
