"""The lifecycle section of the version and instance drawers (registry/flow.py): the state-flow diagram
draws every transition the FSM declares, with the current state marked, and the buttons name every way
out of the current state, the refused ones disabled with the reason, and the final state, when it is not
one step away, disabled with the way there (issue 26: the instance drawer offered no Retire from ACTIVE
and said nothing about draining first)."""

import re
from html import unescape

import pytest
from django.urls import reverse

from registry.choices import InstanceState, VersionState
from registry.flow import INSTANCE_FLOW, VERSION_FLOW, lifecycle_options, state_flow
from registry.models import AgentInstance, AgentVersion
from tests.factories import InstanceFactory

HX = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "drawer-root"}
PATH_POINT = re.compile(r"(-?[\d.]+),(-?[\d.]+)")


def declared(model, field: str) -> set[tuple[str, str]]:
    return {(t.source, t.target) for t in model._meta.get_field(field).get_all_transitions(model)}


@pytest.mark.parametrize(
    ("model", "field", "layout", "states"),
    [
        (AgentVersion, "lifecycle_state", VERSION_FLOW, VersionState),
        (AgentInstance, "state", INSTANCE_FLOW, InstanceState),
    ],
)
def test_the_diagram_draws_every_declared_transition_inside_its_box(model, field, layout, states):
    assert set(layout.nodes) == set(states.values)
    obj = model(**{field: states.values[0]})
    flow = state_flow(obj, field, [], layout)
    assert {(e["source"], e["target"]) for e in flow["edges"]} == declared(model, field)
    assert len(flow["edges"]) == len(declared(model, field))
    for node in flow["nodes"]:
        assert 0 <= node["x"] and node["x"] + node["w"] <= layout.width, node
        assert 0 <= node["y"] and node["y"] + node["h"] <= layout.height, node
    for edge in flow["edges"]:
        for x, y in PATH_POINT.findall(edge["path"])[:1] + PATH_POINT.findall(edge["path"])[-1:]:
            assert 0 <= float(x) <= layout.width and 0 <= float(y) <= layout.height, edge


def options_of(instance_state, member, **fields):
    instance = InstanceFactory(state=instance_state, **fields)
    return {o.target: o for o in lifecycle_options(instance, "state", member.actor)}


def test_an_active_instance_offers_retire_disabled_naming_the_way_through_draining(db, operator):
    options = options_of(InstanceState.ACTIVE, operator)
    assert {t for t, o in options.items() if o.allowed} == {"PAUSED", "READONLY", "DRAINING", "QUARANTINED"}
    retire = options["RETIRED"]
    assert not retire.allowed
    assert retire.blocked_by == "Not directly from ACTIVE: drain first (ACTIVE → DRAINING → RETIRED)"
    paused = options_of(InstanceState.PAUSED, operator)
    assert paused["RETIRED"].blocked_by == "Not directly from PAUSED: drain first (PAUSED → DRAINING → RETIRED)"


def test_refusals_by_role_stay_visible_with_their_reason(db, operator, approver):
    quarantined = options_of(InstanceState.QUARANTINED, operator)
    assert not quarantined["ACTIVE"].allowed and quarantined["ACTIVE"].blocked_by == "Needs role: approver"
    assert quarantined["RETIRED"].allowed
    as_approver = options_of(InstanceState.DRAINING, approver)
    assert as_approver["RETIRED"].blocked_by == "Needs role: operator"
    assert options_of(InstanceState.RETIRED, operator) == {}


def test_an_approved_version_offers_retire_through_deprecation(login, operator, world):
    html = unescape(login(operator).get(reverse("ui:version_detail", args=[world.root.pk]), **HX).content.decode())
    retire = html.split('data-testid="transition-RETIRED"', 1)[0].rsplit("<button", 1)[1]
    assert "disabled" in retire
    assert "Not directly from APPROVED: deprecate first (APPROVED → DEPRECATED → RETIRED)" in html


def drawer(client, instance) -> str:
    response = client.get(reverse("ui:instance_detail", args=[instance.pk]), **HX)
    assert response.status_code == 200
    return unescape(response.content.decode())


def test_the_instance_drawer_shows_the_diagram_and_every_way_out(login, operator, world):
    html = drawer(login(operator), world.instance)
    section = html.split('data-testid="instance-lifecycle"', 1)[1].split("</section>", 1)[0]
    assert 'data-testid="state-flow"' in section
    current = re.findall(r'<g data-state="(\w+)" data-current="true">', section)
    assert current == ["ACTIVE"]
    assert len(re.findall(r"<path d=", section)) - 3 == len(declared(AgentInstance, "state"))  # 3 arrow heads
    kinds = dict(re.findall(r'data-edge="([A-Z]+-[A-Z]+)" data-kind="(\w+)"', section))
    assert kinds["ACTIVE-DRAINING"] == kinds["ACTIVE-PAUSED"] == "allowed"
    assert kinds["DRAINING-RETIRED"] == "idle"
    for target in ("PAUSED", "READONLY", "DRAINING", "QUARANTINED", "RETIRED"):
        assert f'data-testid="transition-{target}"' in section
    retire = section.split('data-testid="transition-RETIRED"', 1)[0].rsplit("<button", 1)[1]
    assert "disabled" in retire and 'aria-describedby="why-RETIRED"' in retire
    assert "Not directly from ACTIVE: drain first (ACTIVE → DRAINING → RETIRED)" in section


def test_a_viewer_sees_the_diagram_but_no_buttons(login, viewer, world):
    html = drawer(login(viewer), world.instance)
    assert 'data-testid="state-flow"' in html and 'data-current="true"' in html
    assert 'data-testid="transition-form"' not in html
    assert "Your role can read this instance but not move it." in html


def test_an_approver_sees_why_a_quarantined_instance_cannot_be_retired_by_them(login, approver, world):
    quarantined = InstanceFactory(version=world.root, state=InstanceState.QUARANTINED)
    html = drawer(login(approver), quarantined)
    kinds = dict(re.findall(r'data-edge="([A-Z]+-[A-Z]+)" data-kind="(\w+)"', html))
    assert kinds["QUARANTINED-ACTIVE"] == "allowed" and kinds["QUARANTINED-RETIRED"] == "blocked"
    assert "Needs role: operator" in html.split('data-testid="why-RETIRED"', 1)[1][:80]
