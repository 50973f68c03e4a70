"""Every UI page: signed-out visitors go to the login page, members of the tenant get it, a user
without a tenant gets a friendly 403, and the pages show the active tenant's data only."""

import pytest
from django.urls import reverse

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def page_urls(w):
    return [
        reverse("ui:directory"),
        reverse("ui:directory_tab", args=["templates"]),
        reverse("ui:directory_tab", args=["versions"]),
        reverse("ui:directory_tab", args=["instances"]),
        reverse("ui:version_detail", args=[w.root.pk]),
        reverse("ui:instance_detail", args=[w.instance.pk]),
        reverse("ui:instance_decisions", args=[w.instance.pk]),
        reverse("ui:evaluations"),
        reverse("ui:federation"),
        reverse("ui:policies"),
        reverse("ui:policy_edit", args=[w.policy.pk]),
        reverse("ui:cost"),
        reverse("ui:incidents"),
        reverse("ui:approvals"),
        reverse("ui:approvals") + "?tab=history",
        reverse("ui:approvals_pending"),
        reverse("ui:audit"),
        reverse("ui:audit") + "?verify=1",
    ]


def test_signed_out_visitors_are_sent_to_login(client, world):
    for url in page_urls(world):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("login")), url


def test_login_page_renders_in_the_theme(client):
    response = client.get(reverse("login"))
    assert response.status_code == 200
    assert b"Sign in" in response.content
    assert b"/static/css/dist/styles.css" in response.content


def test_every_page_renders_for_a_viewer(login, viewer, world):
    client = login(viewer)
    for url in page_urls(world):
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)


def test_pages_show_only_the_active_tenants_rows(login, viewer, world, other_world):
    client = login(viewer)
    for url, own, foreign in [
        (reverse("ui:directory_tab", args=["templates"]), world.template.name, other_world.template.name),
        (reverse("ui:directory_tab", args=["instances"]), world.instance.name, other_world.instance.name),
        (reverse("ui:policies"), world.policy.name, other_world.policy.name),
        (reverse("ui:cost"), world.instance.name, other_world.instance.name),
        (reverse("ui:federation"), world.provider.name, other_world.provider.name),
    ]:
        html = client.get(url).content.decode()
        assert own in html, url
        assert foreign not in html, url
    versions = client.get(reverse("ui:directory_tab", args=["versions"])).content.decode()
    assert str(world.root.pk)[:8] in versions
    assert str(other_world.root.pk)[:8] not in versions


def test_a_user_without_a_tenant_gets_a_friendly_403(client, world):
    user = UserFactory(username="drifter")
    user.refresh_from_db()
    client.force_login(user)
    response = client.get(reverse("ui:directory"))
    assert response.status_code == 403
    assert b"not a member of any tenant" in response.content


def test_unknown_pages_get_the_themed_404(login, viewer):
    response = login(viewer).get("/no-such-page/")
    assert response.status_code == 404
    assert b"Not found" in response.content
    assert b"Go to the directory" in response.content


def test_unknown_directory_tab_is_404(login, viewer):
    assert login(viewer).get(reverse("ui:directory_tab", args=["nope"])).status_code == 404


def test_sidebar_badge_counts_pending_approvals_of_the_tenant(login, viewer, world, other_world):
    html = login(viewer).get(reverse("ui:directory")).content.decode()
    assert 'data-testid="pending-badge"' in html
    assert 'aria-label="1 pending"' in html


def test_logout_is_a_post_and_ends_the_session(login, viewer):
    client = login(viewer)
    response = client.post(reverse("logout"))
    assert response.status_code == 302
    assert client.get(reverse("ui:directory")).status_code == 302


def test_server_error_page_is_themed(rf):
    from arm.views import server_error

    response = server_error(rf.get("/directory/"))
    assert response.status_code == 500
    assert b"Something went wrong" in response.content and b"styles.css" in response.content
    api = server_error(rf.get("/api/v1/versions/"))
    assert api.status_code == 500 and api["Content-Type"] == "application/json"


def test_policy_list_search(login, viewer, world):
    from tests.policies.factories import PolicyFactory

    PolicyFactory(tenant=world.tenant, name="observe-only", autonomy_tier=0)
    client = login(viewer)
    html = client.get(reverse("ui:policies"), {"search": "observe"}).content.decode()
    table = html.split('data-testid="policy-table"', 1)[1]
    assert "observe-only" in table and "standard" not in table
    html = client.get(reverse("ui:policies"), {"autonomy_tier": "2"}).content.decode()
    assert "standard" in html.split('data-testid="policy-table"', 1)[1]
