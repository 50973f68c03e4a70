"""Tool call names (the runtime protocol): a manifest entry may declare ``call_name``, the name frameworks
call it by (OpenAI and Anthropic accept ^[a-zA-Z0-9_-]{1,64}$); without one it is derived (email.send →
email_send). A new genome whose call names clash, or whose declared one is malformed, is refused (400)."""

import pytest

from registry.genome import call_name, derived_call_name, manifest_tool, manifest_tools
from tests.factories import TemplateFactory, make_genome
from tests.helpers import assert_error

pytestmark = pytest.mark.django_db


@pytest.fixture
def template(tenant):
    return TemplateFactory(tenant=tenant)


def create(member, template, tools, label="1.0.0"):
    body = {"template": str(template.pk), "version_label": label, "genome": make_genome(tools=tools)}
    return member.client.post("/api/v1/versions/", body, format="json")


@pytest.mark.parametrize(
    ("name", "expected"),
    [("email.send", "email_send"), ("crm/lookup v2", "crm_lookup_v2"), ("ok_name-1", "ok_name-1"), ("é.x", "__x")],
)
def test_a_call_name_is_derived_from_the_manifest_name(name, expected):
    assert derived_call_name(name) == expected == call_name({"name": name})


def test_a_declared_call_name_wins():
    assert call_name({"name": "email.send", "call_name": "send_mail"}) == "send_mail"


def test_a_genome_with_declared_call_names_is_accepted(operator, template):
    tools = [{"name": "email.send", "call_name": "send_mail"}, {"name": "email_send"}]
    response = create(operator, template, tools)
    assert response.status_code == 201, response.json()


@pytest.mark.parametrize(
    "tools",
    [
        [{"name": "email.send"}, {"name": "email_send"}],  # derived == manifest name of the other
        [{"name": "email.send"}, {"name": "email/send"}],  # two derived alike
        [{"name": "a.b", "call_name": "x"}, {"name": "c.d", "call_name": "x"}],  # two declared alike
        [{"name": "a.b", "call_name": "c_d"}, {"name": "c.d"}],  # declared == derived
    ],
)
def test_call_names_that_clash_are_refused(operator, template, tools):
    assert_error(create(operator, template, tools), 400, "validation_error", contains=["call name", "tool_manifest[1]"])


@pytest.mark.parametrize("bad", ["1starts_with_digit", "has.dot", "", "x" * 65, 7, "spa ce"])
def test_a_malformed_declared_call_name_is_refused(operator, template, bad):
    response = create(operator, template, [{"name": "email.send", "call_name": bad}])
    assert_error(response, 400, "validation_error", contains=["tool_manifest[0].call_name"])


def test_a_tool_is_found_by_its_name_then_by_its_call_name():
    genome = make_genome(tools=[{"name": "email.send", "risk": "high"}, {"name": "send", "call_name": "email_send"}])
    assert manifest_tool(genome, "email.send")["name"] == "email.send"
    # A stored genome written before the rule may hold a clash: the manifest name, then the first entry, wins.
    assert manifest_tool(genome, "email_send")["name"] == "email.send"
    assert manifest_tool(genome, "send")["name"] == "send"
    assert manifest_tool(genome, "nope") is None


def test_manifest_tools_lists_names_call_names_risks_and_scopes():
    genome = make_genome(tools=[{"name": "crm.lookup", "data_scopes": ["crm:read"]}, {"name": "x", "risk": "bad"}])
    assert manifest_tools(genome) == [
        {"name": "crm.lookup", "call_name": "crm_lookup", "risk": "medium", "data_scopes": ["crm:read"]},
        {"name": "x", "call_name": "x", "risk": None, "data_scopes": []},
    ]
