"""Helpers for the export tests: the ``chains`` fixture's shape (tests/audit/conftest.py), writing an
export, reading and rewriting its lines."""

import io
import json
from pathlib import Path

from django.conf import settings
from django.core.management import call_command

from tests.audit.test_chain import OURS

REPO = Path(settings.BASE_DIR)
CAST = 1 + 5 + 5  # acme's records once the cast exists: the first signed checkpoint of ``chains``
N = OURS + 1  # acme's records in ``chains``: those of test_chain's two_chains, and one more


def export(tmp_path, slug="acme", name="export.jsonl", **options) -> Path:
    path = tmp_path / name
    call_command("export_audit", tenant=slug, output=str(path), stderr=io.StringIO(), **options)
    return path


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def records(items: list[dict]) -> list[dict]:
    return [item for item in items if item["type"] == "record"]


def index(items: list[dict], seq: int) -> int:
    """The position of record ``seq`` among an export's lines."""
    return next(i for i, item in enumerate(items) if item["type"] == "record" and item["seq"] == seq)


def write(path: Path, items: list[dict]) -> Path:
    path.write_text("".join(json.dumps(item, ensure_ascii=False) + "\n" for item in items), encoding="utf-8")
    return path
