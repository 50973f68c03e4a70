import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def test_a_form_posted_without_its_csrf_token_gets_the_themed_page(operator):
    client = Client(enforce_csrf_checks=True)
    client.force_login(operator.user)
    response = client.post("/accounts/logout/")
    assert response.status_code == 403
    assert "Form expired" in response.text and "<html" in response.text.lower()
