"""Record evaluation from the version drawer: a UI-only operator moves a version out of TESTING without
the API. The form calls ``registry.services.evaluation_record`` (change record, eval status), the drawer
comes back refreshed, errors stay in the form with what was typed, and the harness snippet carries the
full endpoint URL."""

import json
from html import unescape

import pytest
from django.urls import reverse

from audit.choices import EventType
from registry.choices import EvalStatus, VersionState
from registry.models import EvaluationResult
from tests.factories import VersionFactory
from tests.helpers import record_count, records

pytestmark = pytest.mark.django_db
MODAL = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "modal-root"}
DRAWER = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "drawer-root"}


@pytest.fixture
def testing(world):
    return VersionFactory(template=world.template, version_label="5.0.0", lifecycle_state=VersionState.TESTING)


def url(version):
    return reverse("ui:version_evaluation", args=[version.pk])


def drawer(client, version) -> str:
    response = client.get(reverse("ui:version_detail", args=[version.pk]), **DRAWER)
    assert response.status_code == 200
    return response.content.decode()


def test_operator_records_a_pass_and_the_drawer_refreshes(login, operator, testing):
    client = login(operator)
    before = drawer(client, testing)
    candidate = before.split('data-testid="transition-CANDIDATE"', 1)[0].rsplit("<button", 1)[1]
    assert "disabled" in candidate and 'data-testid="record-evaluation"' in before

    form = client.get(url(testing), **MODAL)
    assert form.status_code == 200 and 'data-testid="evaluation-form"' in form.content.decode()
    response = client.post(
        url(testing),
        {
            "suite": "regression",
            "status": "PASS",
            "score": "0.93",
            "notes": "all green",
            "run_url": "https://ci.example.com/runs/42",
        },
        **MODAL,
    )
    assert response.status_code == 200
    # the answer is the drawer, swapped into #drawer-root; the modal is emptied out of band
    assert response["HX-Retarget"] == "#drawer-root" and response["HX-Reswap"] == "innerHTML"
    assert "arm:refresh" in response["HX-Trigger-After-Swap"]
    html = response.content.decode()
    assert '<div id="modal-root" hx-swap-oob="innerHTML"></div>' in html
    assert 'data-testid="version-drawer"' in html and "regression" in html and "recorded" in html  # + toast
    candidate = html.split('data-testid="transition-CANDIDATE"', 1)[0].rsplit("<button", 1)[1]
    assert "disabled" not in candidate
    assert 'href="https://ci.example.com/runs/42"' in html and "all green" in html

    [result] = EvaluationResult.objects.filter(version=testing)
    assert (result.suite, result.status, result.score) == ("regression", "PASS", 0.93)
    assert result.details == {"notes": "all green", "run_url": "https://ci.example.com/runs/42"}
    assert result.created_by == f"user:{operator.user.username}"
    testing.refresh_from_db()
    assert testing.eval_status == EvalStatus.PASS
    [record] = records(testing, EventType.EVALUATION_RECORDED)
    assert record.actor == f"user:{operator.user.username}"
    assert record.payload["changes"]["eval_status"] == {"before": "PENDING", "after": "PASS"}


def test_admin_may_record_and_optional_fields_may_be_blank(login, admin_member, testing):
    response = login(admin_member).post(url(testing), {"suite": "smoke", "status": "FAIL"}, **MODAL)
    assert response.status_code == 200
    [result] = EvaluationResult.objects.filter(version=testing)
    assert result.score is None and result.details == {} and result.status == "FAIL"


def test_plain_post_redirects_to_the_version_page(login, operator, testing):
    response = login(operator).post(url(testing), {"suite": "smoke", "status": "PASS"})
    assert response.status_code == 302 and response["Location"] == reverse("ui:version_detail", args=[testing.pk])


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"suite": "", "status": "PASS"}, "suite", "This field is required"),
        ({"suite": "s", "status": "MAYBE"}, "status", "Select a valid choice"),
        ({"suite": "s", "status": "PASS", "score": "high"}, "score", "Enter a number"),
        ({"suite": "s", "status": "PASS", "score": "inf"}, "score", "Enter a number"),
        ({"suite": "s", "status": "PASS", "run_url": "javascript:alert(1)"}, "run_url", "http(s) URL"),
        ({"suite": "s", "status": "PASS", "run_url": "ci.example.com/runs/1"}, "run_url", "http(s) URL"),
    ],
)
def test_validation_errors_are_next_to_the_field_and_input_is_kept(login, operator, testing, data, field, message):
    before = record_count()
    response = login(operator).post(url(testing), {**data, "notes": "keep these notes"}, **MODAL)
    html = response.content.decode()
    assert response.status_code == 200 and "HX-Retarget" not in response
    assert f'data-field-error="{field}"' in html and message in html
    assert "keep these notes" in html
    assert not EvaluationResult.objects.filter(version=testing).exists() and record_count() == before


def test_retired_version_refuses_with_the_service_message(login, operator, world):
    retired = VersionFactory(template=world.template, version_label="0.0.1", lifecycle_state=VersionState.RETIRED)
    client = login(operator)
    assert 'data-testid="record-evaluation-refused"' in drawer(client, retired)
    response = client.post(url(retired), {"suite": "late", "status": "PASS", "notes": "typed"}, **MODAL)
    html = response.content.decode()
    assert response.status_code == 200 and 'data-testid="form-errors"' in html
    assert "is RETIRED; it takes no more evaluation results" in html and "typed" in html
    assert not EvaluationResult.objects.filter(version=retired).exists()


@pytest.mark.parametrize("role", ["viewer", "approver", "compliance"])
def test_roles_that_may_not_record_get_403_and_no_button(login, cast, role, testing):
    client = login(cast[role])
    html = drawer(client, testing)
    assert 'data-testid="record-evaluation"' not in html
    assert 'data-testid="record-evaluation-hidden"' in html and "needs the operator role" in html
    before = record_count()
    assert client.get(url(testing), **MODAL).status_code == 403
    assert client.post(url(testing), {"suite": "s", "status": "PASS"}, **MODAL).status_code == 403
    assert not EvaluationResult.objects.filter(version=testing).exists() and record_count() == before


def test_another_tenants_version_is_404(login, operator, world, other_world):
    client = login(operator)
    theirs = url(other_world.child)
    assert client.get(theirs, **MODAL).status_code == 404
    assert client.post(theirs, {"suite": "s", "status": "PASS"}, **MODAL).status_code == 404
    assert not EvaluationResult.objects.filter(version=other_world.child).exists()


def test_harness_snippet_has_the_full_absolute_endpoint(login, viewer, testing):
    html = drawer(login(viewer), testing)
    endpoint = f"http://testserver/api/v1/versions/{testing.pk}/evaluations/"
    harness = html.split('data-testid="harness"', 1)[1]
    assert f'value="{endpoint}"' in harness
    curl = unescape(harness.split('data-testid="harness-curl"', 1)[1].split("</pre>", 1)[0])
    assert f'curl -s -X POST "{endpoint}"' in curl and "Authorization: Bearer $ARM_API_KEY" in curl
    body = json.loads(curl.split("-d '", 1)[1].rsplit("'", 1)[0])
    assert body["suite"] and body["status"] == "PASS" and set(body["details"]) == {"notes", "run_url"}
    assert 'data-copy="#harness-curl-' in harness
    assert "…/evaluations/" not in html  # the old, truncated hint


def test_run_links_from_the_api_are_only_http(login, operator, testing):
    client = login(operator)
    member_key = operator.client
    member_key.post(
        f"/api/v1/versions/{testing.pk}/evaluations/",
        {"suite": "api", "status": "PASS", "details": {"run_url": "javascript:alert(1)"}},
        format="json",
    )
    html = drawer(client, testing)
    assert "javascript:" not in html


def test_the_form_works_as_a_plain_page_without_htmx(login, operator, testing):
    client = login(operator)
    html = client.get(url(testing)).content.decode()
    form_tag = html.split('data-testid="evaluation-form"', 1)[0].rsplit("<form", 1)[1]
    assert "hx-post" not in form_tag  # a plain POST, answered with a redirect to the version page
    response = client.post(url(testing), {"suite": "smoke", "status": "PASS"}, follow=True)
    assert response.redirect_chain[-1][0] == reverse("ui:version_detail", args=[testing.pk])
    assert "smoke PASS recorded" in response.content.decode()
