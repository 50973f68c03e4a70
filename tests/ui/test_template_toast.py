"""Creating a template ends in a toast that offers the next step as a link: the New version modal with
this template chosen (htmx), a page of its own without JavaScript. Issue 26: the toast said "add its
first version next" and offered nothing to click."""

import re
from html import unescape

import pytest
from django.urls import reverse

from registry.models import AgentTemplate

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "modal-root"}


def test_the_created_toast_links_to_the_templates_first_version(login, operator, tenant):
    client = login(operator)
    response = client.post(reverse("ui:template_create"), {"name": "triage", "owners": "a@example.com"}, **HX)
    template = AgentTemplate.objects.get(tenant=tenant, name="triage")
    html = unescape(response.content.decode())
    toast = html.split('id="toasts"', 1)[1]
    link = re.search(r'<a href="([^"]+)"[^>]*data-testid="toast-add-version"[^>]*>Add its first version</a>', toast)
    assert link is not None, toast
    url = f"{reverse('ui:version_create')}?template={template.pk}"
    assert link.group(1) == url and f'hx-get="{url}"' in link.group(0) and 'hx-target="#modal-root"' in link.group(0)
    # The link's page: the version form with this template chosen.
    form = client.get(url).content.decode()
    assert re.search(rf'<option value="{template.pk}"[^>]*selected', form)


def test_the_toast_escapes_the_name_it_repeats(login, operator, tenant):
    response = login(operator).post(
        reverse("ui:template_create"), {"name": "triage & co", "owners": "a@example.com"}, **HX
    )
    assert AgentTemplate.objects.filter(tenant=tenant, name="triage & co").exists()
    assert "Template triage &amp; co created." in response.content.decode()
