"""Sign-in throttling (django-axes): failures lock out the account and the client address, the lockout is
a themed 429 (login page and admin login alike), and failures and lockouts of a member are recorded in
each of their tenants' audit trails. Axes keeps its counters in the database, so each test starts clean
(rolled back with the test)."""

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.test import Client
from django.urls import reverse

from audit.choices import EventType
from audit.models import ChangeRecord
from audit.services import verify_chain
from tenancy.login_throttle import client_ip
from tests.factories import MembershipFactory, TenantFactory, UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "pw-for-tests-123"
LIMIT = settings.AXES_FAILURE_LIMIT


def attempt(client, username, password="wrong-password", url=None, **extra):
    return client.post(url or reverse("login"), {"username": username, "password": password}, **extra)


def signed_in(client) -> bool:
    return "_auth_user_id" in client.session


def test_the_defaults_are_documented_and_sane():
    assert 5 <= LIMIT <= 10
    assert settings.AXES_COOLOFF_TIME.total_seconds() == 15 * 60
    assert settings.AXES_LOCKOUT_PARAMETERS == ["username", "ip_address"]
    assert settings.AUTHENTICATION_BACKENDS[0] == "axes.backends.AxesStandaloneBackend"


def test_the_nth_wrong_password_locks_out_and_the_right_one_is_refused(viewer):
    client = Client()
    for n in range(1, LIMIT):
        response = attempt(client, viewer.user.username)
        assert response.status_code == 200, n  # the form again, with its error
        assert b"Please enter a correct username and password" in response.content
    response = attempt(client, viewer.user.username)
    assert response.status_code == 429
    html = response.content.decode()
    assert "Too many sign-in attempts" in html and "/static/css/dist/styles.css" in html
    assert int(response["Retry-After"]) == 15 * 60
    # Locked: the right password does not sign in either.
    response = attempt(client, viewer.user.username, PASSWORD)
    assert response.status_code == 429 and not signed_in(client)


def test_the_right_password_signs_in_before_the_limit(viewer):
    client = Client()
    for _ in range(LIMIT - 1):
        attempt(client, viewer.user.username)
    response = attempt(client, viewer.user.username, PASSWORD)
    assert response.status_code == 302 and signed_in(client)


def test_the_account_is_locked_from_every_address(viewer):
    for n in range(LIMIT):
        attempt(Client(), viewer.user.username, REMOTE_ADDR=f"10.0.0.{n + 1}")
    response = attempt(Client(), viewer.user.username, PASSWORD, REMOTE_ADDR="10.9.9.9")
    assert response.status_code == 429


def test_an_address_spraying_accounts_is_locked_for_every_account(cast):
    """Per address too: N failures spread over several accounts lock the address, so another account's
    right password from there is refused; the same account from another address still signs in."""
    client = Client(REMOTE_ADDR="192.0.2.7")
    names = [m.user.username for m in cast.values()]
    for n in range(LIMIT):
        attempt(client, names[n % 2])  # viewer, operator, viewer, ...: below the limit per account
    response = attempt(client, cast["admin"].user.username, PASSWORD)
    assert response.status_code == 429 and not signed_in(client)
    elsewhere = Client(REMOTE_ADDR="192.0.2.8")
    assert attempt(elsewhere, cast["admin"].user.username, PASSWORD).status_code == 302


def test_the_admin_login_is_throttled_too(db):
    staff = UserFactory(username="root-admin", is_staff=True, is_superuser=True)
    client = Client()
    url = reverse("admin:login")
    for _ in range(LIMIT):
        response = attempt(client, staff.username, url=url)
    assert response.status_code == 429
    assert b"Too many sign-in attempts" in response.content
    assert attempt(client, staff.username, PASSWORD, url=url).status_code == 429


def test_failures_and_the_lockout_are_recorded_in_each_tenant_of_the_account(db):
    acme, globex = TenantFactory(slug="acme"), TenantFactory(slug="globex")
    user = UserFactory(username="two-tenants")
    MembershipFactory(tenant=acme, user=user, roles=["viewer"])
    MembershipFactory(tenant=globex, user=user, roles=["operator"])
    client = Client(REMOTE_ADDR="198.51.100.4")
    for _ in range(LIMIT + 3):  # three more while locked: axes logs them, the tenant chains do not
        attempt(client, "two-tenants")
    for tenant in (acme, globex):
        failed = ChangeRecord.objects.filter(tenant=tenant, event_type=EventType.LOGIN_FAILED).order_by("seq")
        assert [r.payload["failures"] for r in failed] == list(range(1, LIMIT + 1))
        assert {r.actor for r in failed} == {"anonymous"}
        assert {(r.target_type, r.target_id) for r in failed} == {("User", str(user.pk))}
        assert failed[0].payload["ip_address"] == "198.51.100.4"
        (locked,) = ChangeRecord.objects.filter(tenant=tenant, event_type=EventType.ACCOUNT_LOCKED_OUT)
        assert locked.payload == {
            "username": "two-tenants",
            "ip_address": "198.51.100.4",
            "failures": LIMIT,
            "failure_limit": LIMIT,
            "cooloff_seconds": 15 * 60,
        }
        assert verify_chain(tenant).ok


def test_unknown_usernames_stay_in_axes_log_only(tenant):
    before = ChangeRecord.objects.count()
    for _ in range(LIMIT):
        attempt(Client(), "nobody-by-that-name")
    assert ChangeRecord.objects.count() == before
    assert AccessAttempt.objects.filter(username="nobody-by-that-name").exists()


def test_a_successful_sign_in_writes_no_failure_record(viewer):
    client = Client()
    assert attempt(client, viewer.user.username, PASSWORD).status_code == 302
    assert not ChangeRecord.objects.filter(event_type__in=[EventType.LOGIN_FAILED, EventType.ACCOUNT_LOCKED_OUT])


class FakeRequest:
    def __init__(self, **meta):
        self.META = meta


def test_client_address_is_remote_addr_by_default():
    request = FakeRequest(REMOTE_ADDR="203.0.113.9", HTTP_X_FORWARDED_FOR="1.2.3.4")
    assert client_ip(request) == "203.0.113.9"  # a client cannot choose its address with a header


def test_client_address_from_a_trusted_proxy_header(settings):
    settings.ARM_CLIENT_IP_HEADER = "X-Forwarded-For"
    settings.ARM_TRUSTED_PROXY_COUNT = 1
    # The client wrote 1.2.3.4 itself; the proxy appended the address it saw.
    request = FakeRequest(REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="1.2.3.4, 203.0.113.9")
    assert client_ip(request) == "203.0.113.9"
    settings.ARM_TRUSTED_PROXY_COUNT = 2
    request = FakeRequest(REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="1.2.3.4, 203.0.113.9, 10.0.0.1")
    assert client_ip(request) == "203.0.113.9"
    settings.ARM_CLIENT_IP_HEADER = "X-Real-IP"
    assert client_ip(FakeRequest(REMOTE_ADDR="10.0.0.2", HTTP_X_REAL_IP="203.0.113.5")) == "203.0.113.5"
    assert client_ip(FakeRequest(REMOTE_ADDR="10.0.0.2")) == "10.0.0.2"


def test_the_lockout_counts_the_proxy_header_address(settings, viewer):
    settings.ARM_CLIENT_IP_HEADER = "X-Forwarded-For"
    for _ in range(LIMIT):
        attempt(Client(), "nobody", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="203.0.113.77")
    assert AccessAttempt.objects.filter(ip_address="203.0.113.77").exists()
    # Another client behind the same proxy is not locked out by that address.
    behind_proxy = Client(REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="203.0.113.78")
    response = attempt(behind_proxy, viewer.user.username, PASSWORD)
    assert response.status_code == 302


# ---------------------------------------------------------------- forms that check a current password


def change_admin_password(client, old, new="A-new-passphrase-81"):
    return client.post(
        reverse("admin:password_change"), {"old_password": old, "new_password1": new, "new_password2": new}
    )


@pytest.fixture
def staff(tenant):
    """A tenant admin, who may use Django admin."""
    user = UserFactory(username="staff-admin", is_staff=True)
    MembershipFactory(tenant=tenant, user=user, roles=["admin"])
    return user


def test_admin_password_change_guesses_of_the_current_password_are_throttled(staff):
    """A signed-in session cannot guess the account's password on Django admin's password change page
    without limit: each wrong current password counts as a failed sign-in (and is recorded), the Nth
    locks out, and then even the right one is refused and the password stays."""
    user = staff
    client = Client()
    client.force_login(user)
    for n in range(1, LIMIT):
        response = change_admin_password(client, "wrong-password")
        assert response.status_code == 200, n  # the form again, with its error
        assert b"Your old password was entered incorrectly" in response.content
    response = change_admin_password(client, "wrong-password")
    assert response.status_code == 429 and b"Too many sign-in attempts" in response.content

    response = change_admin_password(client, PASSWORD)
    assert response.status_code == 429
    user.refresh_from_db()
    assert user.check_password(PASSWORD) and not user.check_password("A-new-passphrase-81")
    failed = ChangeRecord.objects.filter(event_type=EventType.LOGIN_FAILED, target_id=str(user.pk))
    assert failed.count() == LIMIT
    # the same account's sign-in is locked out too: one throttle
    assert attempt(Client(), user.username, PASSWORD).status_code == 429


def test_admin_password_change_with_the_right_current_password_still_works(staff):
    user = staff
    client = Client()
    client.force_login(user)
    change_admin_password(client, "wrong-password")

    response = change_admin_password(client, PASSWORD)

    assert response.status_code == 302 and response["Location"] == reverse("admin:password_change_done")
    user.refresh_from_db()
    assert user.check_password("A-new-passphrase-81")
