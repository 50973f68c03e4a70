"""No Django admin page shows a tenant admin another tenant's rows or people: every registered admin's
changelist (with its filters), add form and change forms are walked, so a new admin is covered the moment
it is registered."""

import pytest
from django.contrib import admin
from django.test import Client
from django.urls import NoReverseMatch, reverse

from tests.factories import MembershipFactory, UserFactory
from tests.ui.conftest import build_world

pytestmark = pytest.mark.django_db


@pytest.fixture
def worlds(tenant, other_tenant):
    mine, theirs = build_world(tenant), build_world(other_tenant, prefix="gx-")
    MembershipFactory(tenant=other_tenant, user=UserFactory(username="globex-person"), roles=["operator"])
    MembershipFactory(tenant=tenant, user=UserFactory(username="acme-person"), roles=["viewer"])
    return mine, theirs


@pytest.fixture
def staff_admin(tenant):
    user = UserFactory(username="acme-staff", is_staff=True)
    MembershipFactory(tenant=tenant, user=user, roles=["admin"])
    client = Client()
    client.force_login(user)
    return client


def _their_markers(theirs) -> list[str]:
    return [
        "globex",
        "Globex",
        "globex-person",
        "gx-",
        str(theirs.tenant.pk),
        str(theirs.template.pk),
        str(theirs.root.pk),
        str(theirs.instance.pk),
        str(theirs.policy.pk),
        str(theirs.approval.pk),
    ]


def _admin_urls():
    for model, model_admin in admin.site._registry.items():
        opts = model._meta
        yield model, model_admin, f"admin:{opts.app_label}_{opts.model_name}"


def _assert_no_leak(response, markers, where):
    assert response.status_code in (200, 403), (where, response.status_code)
    leaked = [m for m in markers if m in response.text]
    assert not leaked, f"{where} shows another tenant's {leaked}"


def test_every_changelist_and_its_filters_show_only_the_admins_tenant(staff_admin, worlds):
    _, theirs = worlds
    markers = _their_markers(theirs)
    checked = 0
    for _model, _, name in _admin_urls():
        response = staff_admin.get(reverse(f"{name}_changelist"))
        _assert_no_leak(response, markers, f"{name} changelist")
        checked += response.status_code == 200
    assert checked >= 10  # the domain admins answered, not just 403s


def test_the_tenant_filter_lists_only_the_admins_tenants(staff_admin, worlds):
    response = staff_admin.get(reverse("admin:registry_agenttemplate_changelist"))
    assert "acme" in response.text
    assert "globex" not in response.text


def test_add_and_change_forms_offer_only_the_admins_rows_and_people(staff_admin, worlds, tenant):
    mine, theirs = worlds
    markers = _their_markers(theirs)
    for model, model_admin, name in _admin_urls():
        try:
            add_url = reverse(f"{name}_add")
        except NoReverseMatch:
            add_url = None
        if add_url:
            _assert_no_leak(staff_admin.get(add_url), markers, f"{name} add form")
        obj = model.objects.filter(**({"pk": tenant.pk} if model._meta.label == "arm.Tenant" else {})).first()
        if obj is not None and model_admin.get_queryset(_request_for(staff_admin)).filter(pk=obj.pk).exists():
            _assert_no_leak(staff_admin.get(reverse(f"{name}_change", args=[obj.pk])), markers, f"{name} change form")


def test_the_membership_form_offers_only_members_of_the_admins_tenants(staff_admin, worlds):
    response = staff_admin.get(reverse("admin:arm_membership_add"))
    assert response.status_code == 200
    assert "acme-person" in response.text
    assert "globex-person" not in response.text


def _request_for(client):
    from django.contrib.auth import get_user_model
    from django.test import RequestFactory

    request = RequestFactory().get("/admin/")
    request.user = get_user_model().objects.get(pk=client.session["_auth_user_id"])
    return request
