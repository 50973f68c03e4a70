"""The lifecycle section of the version and instance drawers: the state-flow diagram and the buttons.

Both read the django-fsm transitions declared on the model (their roles and guards, through
``services.transition_options``), so the drawers cannot disagree with what the services allow:

- ``lifecycle_options``: every transition out of the current state, allowed or disabled with the reason
  (role, four eyes, guard), and, when the lifecycle's final state (RETIRED) is not one step away, that
  state too, disabled, naming the way there (the shortest path over the declared transitions: "Not
  directly from ACTIVE: drain first (ACTIVE → DRAINING → RETIRED)").
- ``state_flow``: nodes and edges for the SVG (``registry/_state_flow.html``), every declared transition
  drawn, the current state marked and the ways out of it coloured (allowed / blocked). A layout gives
  each state a box and each transition a path; a transition without a path is a ``KeyError``, so a new
  transition cannot be left out of the picture (tests/registry/test_state_flow.py).

The diagrams are drawn at their own pixel size (never scaled down), so their text stays 12 px.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from registry.choices import InstanceState, VersionState
from registry.services import TransitionOption, transition_options
from tenancy.context import Actor


@dataclass(frozen=True)
class FlowLayout:
    """Where each state's box sits (centre x, centre y, width, height) and each transition's SVG path."""

    key: str  # prefixes the SVG ids (arrow markers)
    width: int
    height: int
    nodes: dict[str, tuple[float, float, float, float]]
    edge: Callable[[str, str], str]


def _transitions(obj, field: str) -> list:
    return list(getattr(obj, f"get_all_{field}_transitions")())


def _final_states(transitions) -> list[str]:
    sources = {t.source for t in transitions}
    return sorted({t.target for t in transitions} - sources)


def _shortest_path(transitions, start: str, goal: str) -> list:
    """The transitions of a shortest way from ``start`` to ``goal`` (declaration order breaks ties)."""
    came: dict[str, object] = {start: None}
    queue = deque([start])
    while queue:
        state = queue.popleft()
        if state == goal:
            break
        for t in transitions:
            if t.source == state and t.target not in came:
                came[t.target] = t
                queue.append(t.target)
    if goal not in came:
        return []
    path, state = [], goal
    while came[state] is not None:
        path.append(came[state])
        state = came[state].source
    return list(reversed(path))


def lifecycle_options(obj, field: str, actor: Actor) -> list[TransitionOption]:
    """The drawer's buttons: the transitions out of the current state (``services.transition_options``),
    then each final state that is reachable but not in one step, disabled with the way there."""
    options = transition_options(obj, field, actor)
    current = getattr(obj, field)
    transitions = _transitions(obj, field)
    offered = {o.target for o in options}
    for final in _final_states(transitions):
        if final in offered or final == current:
            continue
        path = _shortest_path(transitions, current, final)
        if not path:
            continue
        states = " → ".join([current, *(t.target for t in path)])
        first = path[0].name.replace("_", " ")
        reason = f"Not directly from {current}: {first} first ({states})"
        options.append(TransitionOption(target=final, name="", allowed=False, blocked_by=reason))
    return options


def state_flow(obj, field: str, options: list[TransitionOption], layout: FlowLayout) -> dict:
    """Nodes and edges for the SVG state-flow diagram: the current state and the ways out of it marked."""
    allowed_now = {o.target for o in options if o.allowed}
    offered = {o.target for o in options if o.name}  # a transition out of the current state
    current = getattr(obj, field)
    edges = []
    for t in _transitions(obj, field):
        kind = "idle"
        if t.source == current and t.target in allowed_now:
            kind = "allowed"
        elif t.source == current and t.target in offered:
            kind = "blocked"
        edges.append({"path": layout.edge(t.source, t.target), "kind": kind, "source": t.source, "target": t.target})
    # Idle edges first, so the highlighted ones are drawn on top.
    edges.sort(key=lambda e: {"idle": 0, "blocked": 1, "allowed": 2}[e["kind"]])
    nodes = [
        {
            "state": state,
            "x": cx - w / 2,
            "y": cy - h / 2,
            "w": w,
            "h": h,
            "cx": cx,
            "cy": cy + 4,  # text baseline: 12 px text centred in the box
            "current": state == current,
        }
        for state, (cx, cy, w, h) in layout.nodes.items()
    ]
    return {"key": layout.key, "width": layout.width, "height": layout.height, "nodes": nodes, "edges": edges}


# ---------------------------------------------------------------- version layout

# One row from DRAFT to DEPRECATED, RETIRED under it; forward edges along the row, backward ones as arcs.
_V_W, _V_H = 100, 30
_V_ROW = {
    VersionState.DRAFT: 55,
    VersionState.TESTING: 174,
    VersionState.CANDIDATE: 293,
    VersionState.APPROVED: 412,
    VersionState.DEPRECATED: 531,
}
VERSION_NODES = {state: (x, 46, _V_W, _V_H) for state, x in _V_ROW.items()} | {
    VersionState.RETIRED: (293, 146, _V_W, _V_H)
}


def _version_edge(source: str, target: str) -> str:
    x1, y1, _, _ = VERSION_NODES[source]
    x2, y2, _, _ = VERSION_NODES[target]
    half_w, half_h = _V_W / 2, _V_H / 2
    if target == VersionState.RETIRED:
        start_x = x1 + (0 if source == VersionState.CANDIDATE else (10 if x1 < x2 else -10))
        end_x = x2 + max(-40, min(40, (x1 - x2) / 4))
        return f"M{start_x},{y1 + half_h} L{end_x},{y2 - half_h - 2}"
    if x2 > x1:  # forward along the row
        return f"M{x1 + half_w},{y1 + 4} L{x2 - half_w - 2},{y2 + 4}"
    # backward: an arc above the row
    return f"M{x1 - 20},{y1 - half_h} Q{(x1 + x2) / 2},{y1 - 48} {x2 + 20},{y2 - half_h - 2}"


VERSION_FLOW = FlowLayout(key="version", width=590, height=172, nodes=VERSION_NODES, edge=_version_edge)


# ---------------------------------------------------------------- instance layout

# PROVISIONING → ACTIVE → DRAINING along the middle row, PAUSED above and READONLY below ACTIVE's way to
# DRAINING, RETIRED at the right, and QUARANTINED a bar along the bottom that every live state drops into.
# The edges are drawn between the boxes' sides by hand (a pair of opposite edges runs parallel).
_I = InstanceState
INSTANCE_NODES = {
    _I.PROVISIONING: (55, 120, 100, 30),
    _I.ACTIVE: (190, 120, 100, 30),
    _I.PAUSED: (300, 45, 100, 30),
    _I.READONLY: (360, 195, 100, 30),
    _I.DRAINING: (440, 120, 100, 30),
    _I.RETIRED: (536, 195, 100, 30),
    _I.QUARANTINED: (250, 268, 460, 30),
}


def _line(*points: tuple[float, float]) -> str:
    return "M" + " L".join(f"{x:g},{y:g}" for x, y in points)


INSTANCE_EDGES = {
    (_I.PROVISIONING, _I.ACTIVE): _line((105, 120), (138, 120)),
    (_I.ACTIVE, _I.PAUSED): _line((208, 105), (252, 62)),
    (_I.PAUSED, _I.ACTIVE): _line((264, 60), (222, 103)),
    (_I.ACTIVE, _I.READONLY): _line((225, 135), (308, 188)),
    (_I.READONLY, _I.ACTIVE): _line((306, 197), (222, 143)),
    (_I.ACTIVE, _I.DRAINING): _line((240, 120), (388, 120)),
    (_I.PAUSED, _I.DRAINING): _line((350, 50), (412, 103)),
    (_I.READONLY, _I.DRAINING): _line((400, 180), (400, 137)),
    (_I.DRAINING, _I.RETIRED): _line((470, 135), (505, 178)),
    # into the QUARANTINED bar, straight down from each live state
    (_I.PROVISIONING, _I.QUARANTINED): _line((45, 135), (45, 251)),
    (_I.ACTIVE, _I.QUARANTINED): _line((165, 135), (165, 251)),
    (_I.PAUSED, _I.QUARANTINED): _line((300, 60), (300, 251)),
    (_I.READONLY, _I.QUARANTINED): _line((345, 210), (345, 251)),
    (_I.DRAINING, _I.QUARANTINED): _line((455, 135), (455, 251)),
    # lifting a quarantine (up beside ACTIVE's drop into the bar), and retiring a quarantined instance
    (_I.QUARANTINED, _I.ACTIVE): _line((185, 253), (185, 137)),
    (_I.QUARANTINED, _I.RETIRED): _line((470, 253), (520, 212)),
    # PROVISIONING → RETIRED (never ran): an arc over the top of the diagram
    (_I.PROVISIONING, _I.RETIRED): "M55,105 Q300,-120 575,178",
}


def _instance_edge(source: str, target: str) -> str:
    return INSTANCE_EDGES[(source, target)]


INSTANCE_FLOW = FlowLayout(key="instance", width=590, height=290, nodes=INSTANCE_NODES, edge=_instance_edge)
