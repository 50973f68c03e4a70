"""docs/notifications.md shows every type of the catalogue with an example body whose data has the keys
the type's builder sends (its ``example``), so the page and the code cannot drift apart."""

import json
import re
from pathlib import Path

import pytest
from django.conf import settings

from notifications import catalogue

DOC = (Path(settings.BASE_DIR) / "docs" / "notifications.md").read_text()


def _documented_body(event_type: str) -> dict:
    match = re.search(rf"^### {re.escape(event_type)}\n.*?```json\n(.*?)\n```", DOC, re.S | re.M)
    assert match, f"docs/notifications.md has no example for {event_type}"
    return json.loads(match.group(1))


@pytest.mark.parametrize("event_type", sorted(catalogue.CATALOGUE), ids=str)
def test_every_type_is_documented_with_its_builders_keys(event_type):
    spec = catalogue.CATALOGUE[event_type]
    body = _documented_body(event_type)
    assert body["type"] == event_type
    assert set(body) == {"type", "timestamp", "data"}
    expected = {"tenant", *spec.example} | ({"change_record"} if spec.sources else set())
    assert set(body["data"]) == expected
    assert f"`{event_type}`" in DOC.split("### ")[0]  # in the table too


def test_the_documented_types_are_the_subscribable_ones():
    assert set(catalogue.EVENT_TYPES) == catalogue.SUBSCRIBABLE
    assert catalogue.TEST_EVENT not in catalogue.SUBSCRIBABLE
