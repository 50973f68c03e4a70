"""A version row edited in the database, genome and genome_hash rewritten together (a superuser with
SQL: the row still verifies), to something that breaks the genome rules. Nothing that reads it trusts
it: the API list and detail stay valid JSON with the genome confined to its field (the stored object
when it is one any client can read, else the stored text as a string), the UI and admin mark the genome
unreadable and never render its content unescaped, diffs refuse with 409, and nothing answers 500."""

import json

import pytest
from django.test import Client

from audit.choices import EventType
from registry.choices import IntegrityStatus
from registry.genome import tool_risk
from registry.models import AgentVersion
from tests.factories import MembershipFactory, TemplateFactory, UserFactory, VersionFactory, make_genome
from tests.helpers import assert_error, records, tamper_genome

pytestmark = pytest.mark.django_db

HASH = "sha256:" + "ab" * 32
SCRIPT = "<script>alert(1)</script>"


def _text(value) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


# name -> (stored text, whether the API embeds it as the stored object; else it returns the text as a string)
EDITED = {
    "not_json": ("not json {", False),
    "injection": ('{"a":1},"lifecycle_state":"APPROVED","injected":{"b":2}', False),
    "a_string": ('"a string"', False),
    "a_list": ("[1,2]", False),
    "nan": ('{"model_config":{"name":"n","provider":"p","parameters":{"t":NaN}}}', False),
    "lone_surrogate": (
        '{"model_config":{"name":"\\ud800","provider":"p"},"prompt_bundle_hash":"' + HASH + '","tool_manifest":[]}',
        False,
    ),
    "too_deep_for_clients": ("[" * 150 + "]" * 150, False),
    "deeper_than_any_parser": ("[" * 100_000 + "]" * 100_000, False),
    "deep_object": ('{"model_config":' + '{"a":' * 150 + "1" + "}" * 150 + "}", False),
    "empty_object": ("{}", True),
    "wrong_types": (
        _text({"model_config": "x", "prompt_bundle_hash": 5, "tool_manifest": "abc", "provenance": "p"}),
        True,
    ),
    "wrong_nested_types": (
        _text(
            {
                "model_config": {"name": {"a": 1}, "provider": ["p"], "parameters": "z"},
                "prompt_bundle_hash": HASH,
                "tool_manifest": [1, "x", {"name": {"n": 1}, "risk": ["high"], "data_scopes": "abc"}, None],
                "provenance": {"a": {"b": 1}},
            }
        ),
        True,
    ),
    "html": (
        _text(
            {
                "model_config": {"name": SCRIPT, "provider": "<img src=x onerror=alert(2)>", "parameters": "</pre>"},
                "prompt_bundle_hash": f"</pre>{SCRIPT}",
                "tool_manifest": [{"name": SCRIPT, "risk": "<b>high</b>"}],
            }
        ),
        True,
    ),
    "huge_string": (_text(make_genome(model="A" * 300_000)), True),
    "unknown_key": (_text({**make_genome(), "note": SCRIPT}), True),
}
NOT_JSON = {"not_json", "injection", "nan", "lone_surrogate", "deeper_than_any_parser"}
ROW_KEYS = {
    "id",
    "template",
    "version_label",
    "genome",
    "genome_hash",
    "parent",
    "lifecycle_state",
    "eval_status",
    "created_by",
    "created_at",
    "updated_at",
}


@pytest.fixture
def family(tenant):
    """root → edited → child, all of one template, plus an untouched sibling."""
    template = TemplateFactory(tenant=tenant, name="support-bot")
    root = VersionFactory(template=template, version_label="0.9.0", lifecycle_state="APPROVED", eval_status="PASS")
    edited = VersionFactory(template=template, version_label="1.0.0", parent=root, lifecycle_state="APPROVED")
    child = VersionFactory(template=template, version_label="1.1.0", parent=edited)
    return root, edited, child


def edit(version, name) -> str:
    text, _ = EDITED[name]
    tamper_genome(version, text, rehash=True)
    return text


def expected_genome(name):
    text, embedded = EDITED[name]
    return json.loads(text) if embedded else text


def decoded(response) -> dict:
    assert response.status_code == 200, response.content[:300]
    assert response["Content-Type"].startswith("application/json")
    return json.loads(response.content)  # the standard decoder of any Python client


@pytest.fixture
def ui(operator):
    client = Client()
    operator.user.refresh_from_db()
    client.force_login(operator.user)
    return client


@pytest.fixture
def staff(tenant):
    user = UserFactory(username="acme-staff", is_staff=True)
    MembershipFactory(tenant=tenant, user=user, roles=["admin"])
    client = Client()
    client.force_login(user)
    return client


def assert_safe_html(response):
    assert response.status_code == 200
    html = response.content.decode()
    assert SCRIPT not in html and "<img src=x" not in html  # escaped, never markup
    assert "{&#x27;" not in html and "[&#x27;" not in html  # no Python repr of a stored value
    return html


# ---------------------------------------------------------------- API


@pytest.mark.parametrize("name", list(EDITED))
def test_the_api_list_stays_valid_json_with_the_genome_in_its_field(viewer, family, name):
    root, edited, child = family
    edit(edited, name)

    rows = {row["id"]: row for row in decoded(viewer.client.get("/api/v1/versions/"))["results"]}

    assert set(rows) == {str(root.pk), str(edited.pk), str(child.pk)}
    assert all(set(row) == ROW_KEYS for row in rows.values())
    row = rows[str(edited.pk)]
    assert row["lifecycle_state"] == "APPROVED"
    assert row["genome"] == expected_genome(name)
    assert rows[str(root.pk)]["genome"] == root.genome


@pytest.mark.parametrize("name", list(EDITED))
def test_the_api_detail_and_lineage_stay_valid_json(viewer, family, name):
    _, edited, child = family
    text = edit(edited, name)

    data = decoded(viewer.client.get(f"/api/v1/versions/{edited.pk}/"))
    assert set(data) == ROW_KEYS | {"integrity"}
    assert data["genome"] == expected_genome(name)
    # the rewritten hash matches what is stored, so a JSON text still verifies; one that is not strict JSON
    # (orjson's rules: no NaN, no lone surrogates, at most 1024 levels) never does
    assert data["integrity"]["status"] == ("TAMPERED" if name in NOT_JSON else "VERIFIED")
    assert data["integrity"]["stored_hash"] == edited.__class__.objects.get(pk=edited.pk).genome_hash
    if data["integrity"]["status"] == "VERIFIED":
        assert data["integrity"]["computed_hash"] == data["genome_hash"]

    lineage = decoded(viewer.client.get(f"/api/v1/versions/{child.pk}/lineage/"))
    assert [a["id"] for a in lineage["ancestors"]][0] == str(edited.pk)
    assert lineage["ancestors"][0]["genome"] == expected_genome(name)
    assert text  # (the edit happened)


@pytest.mark.parametrize("name", list(EDITED))
def test_a_diff_with_an_unreadable_genome_is_refused_naming_it(viewer, family, name):
    root, edited, child = family
    edit(edited, name)

    for url in (f"/api/v1/versions/{edited.pk}/diff/", f"/api/v1/versions/{child.pk}/diff/"):
        body = assert_error(viewer.client.get(url), 409, "genome_unreadable")
        assert body["message"].startswith("Cannot compare version 1.0.0: its stored genome is unreadable ("), body


def test_a_sound_genome_still_diffs(viewer, family):
    root, edited, _ = family
    response = viewer.client.get(f"/api/v1/versions/{edited.pk}/diff/")
    assert response.status_code == 200, response.json()
    assert response.json()["from"] == str(root.pk)


# ---------------------------------------------------------------- UI and admin


@pytest.mark.parametrize("name", list(EDITED))
def test_the_directory_marks_the_row_and_shows_the_others(ui, family, name):
    root, edited, _ = family
    edit(edited, name)

    html = assert_safe_html(ui.get("/directory/versions/"))

    assert html.count('data-testid="version-row"') == 3
    assert html.count('data-testid="genome-unreadable"') == 1
    assert "gpt-4.1" in html  # the sound rows' model


@pytest.mark.parametrize("name", list(EDITED))
def test_the_drawer_names_the_unreadable_genome_and_shows_it_escaped(ui, family, name):
    _, edited, child = family
    text = edit(edited, name)

    html = assert_safe_html(ui.get(f"/versions/{edited.pk}/", HTTP_HX_REQUEST="true"))
    assert 'data-testid="genome-unreadable"' in html
    assert "Genome unreadable: " in html
    if name == "html":
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # the stored text, escaped
    assert len(html) < len(text) + 100_000  # an excerpt, not the whole stored text

    child_html = assert_safe_html(ui.get(f"/versions/{child.pk}/"))
    assert 'data-testid="genome-diff-unreadable"' in child_html
    assert "Cannot compare version 1.0.0" in child_html


@pytest.mark.parametrize("name", ["wrong_nested_types", "html", "a_list"])
def test_a_new_child_version_does_not_copy_an_unreadable_genome(ui, family, name):
    _, edited, _ = family
    edit(edited, name)

    html = assert_safe_html(ui.get(f"/versions/new/?parent={edited.pk}"))

    assert f'value="{edited.pk}" selected' in html  # the parent is kept; nothing of its genome is


@pytest.mark.parametrize("name", list(EDITED))
def test_the_admin_shows_the_genome_as_unreadable(staff, family, name):
    _, edited, _ = family
    edit(edited, name)

    assert_safe_html(staff.get("/admin/registry/agentversion/"))
    html = assert_safe_html(staff.get(f"/admin/registry/agentversion/{edited.pk}/change/"))
    assert "Genome unreadable:" in html


def test_a_sound_genome_with_markup_in_its_strings_is_shown_escaped(ui, tenant):
    from registry.genome import genome_problem

    genome = make_genome(
        model=SCRIPT,
        tools=[{"name": SCRIPT, "risk": "low", "data_scopes": [SCRIPT]}],
        provenance={"source": SCRIPT, "nested": {"k": SCRIPT}},
    )
    version = VersionFactory(template=TemplateFactory(tenant=tenant), genome=genome)
    assert genome_problem(AgentVersion.objects.get(pk=version.pk).genome) is None

    assert_safe_html(ui.get("/directory/versions/"))
    html = assert_safe_html(ui.get(f"/versions/{version.pk}/"))
    assert 'data-testid="genome-unreadable"' not in html
    assert "&lt;script&gt;" in html
    assert "{&quot;k&quot;: &quot;&lt;script&gt;" in html  # a nested provenance value as JSON, not a repr


# ---------------------------------------------------------------- reading rules


def test_a_manifest_risk_that_is_not_a_risk_counts_as_undeclared():
    genome = {"tool_manifest": [{"name": "a", "risk": ["high"]}, {"name": "b", "risk": "severe"}, {"name": "c"}]}
    assert tool_risk(genome, "a") is None
    assert tool_risk(genome, "b") is None
    assert tool_risk(genome, "c") == "medium"
    assert tool_risk({"tool_manifest": None}, "a") is None
    assert tool_risk({"tool_manifest": 5}, "a") is None


def test_a_json_text_that_is_not_an_object_still_verifies_by_its_hash(viewer, family):
    _, edited, _ = family
    edit(edited, "a_list")

    data = decoded(viewer.client.get(f"/api/v1/versions/{edited.pk}/"))

    assert data["integrity"]["status"] == IntegrityStatus.VERIFIED
    assert len(records(edited, EventType.INTEGRITY_VERIFIED)) == 1
