"""/accounts/ exposes sign-in and sign-out only: no password-reset pages (ARM sends no mail). GET on the
sign-out URL asks for confirmation instead of a bare 405."""

import pytest
from django.test import Client
from django.urls import NoReverseMatch, reverse

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "path",
    [
        "/accounts/password_reset/",
        "/accounts/password_reset/done/",
        "/accounts/reset/MQ/set-password/",
        "/accounts/reset/done/",
        "/accounts/password_change/",
        "/accounts/password_change/done/",
    ],
)
def test_password_reset_pages_do_not_exist(client, path):
    assert client.get(path).status_code == 404
    assert client.post(path, {"email": "someone@example.com"}).status_code == 404


def test_password_reset_names_do_not_resolve():
    for name in ["password_reset", "password_reset_confirm", "password_change"]:
        with pytest.raises(NoReverseMatch):
            reverse(name)


def test_login_and_logout_remain(client):
    assert reverse("login") == "/accounts/login/" and reverse("logout") == "/accounts/logout/"
    assert client.get(reverse("login")).status_code == 200


def test_get_logout_asks_for_confirmation(viewer):
    client = Client()
    client.force_login(viewer.user)
    response = client.get(reverse("logout"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Sign out?" in html and viewer.user.username in html
    assert 'method="post" action="/accounts/logout/"' in html and "csrfmiddlewaretoken" in html
    assert "<script>" not in html and "onclick" not in html
    assert "_auth_user_id" in client.session  # still signed in


def test_post_logout_signs_out(viewer):
    client = Client()
    client.force_login(viewer.user)
    response = client.post(reverse("logout"))
    assert response.status_code == 302 and response["Location"] == reverse("login")
    assert "_auth_user_id" not in client.session


def test_get_logout_signed_out_goes_to_login(client):
    response = client.get(reverse("logout"))
    assert response.status_code == 302 and response["Location"] == reverse("login")
