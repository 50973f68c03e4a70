"""The layer rule: apps import one way (pyproject.toml's import-linter contract, README "Architecture").

The contract is checked as CI checks it (``lint-imports``); the second test proves the check has teeth: the
same analysis with the bottom layer placed above registry reports the imports that break it."""

import subprocess
import sys
import tomllib
from pathlib import Path

from django.conf import settings

BASE = Path(settings.BASE_DIR)
LINT = [str(Path(sys.executable).with_name("lint-imports"))]


def test_the_import_contract_is_kept():
    result = subprocess.run([*LINT, "--no-cache"], cwd=BASE, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 kept, 0 broken" in result.stdout


def test_an_import_against_the_direction_breaks_it(tmp_path):
    config = tomllib.loads((BASE / "pyproject.toml").read_text())["tool"]["importlinter"]
    contract = config["contracts"][0]
    layers = [layer for layer in contract["layers"] if layer != "audit"]
    # audit imports tenancy (tenants, the request context) everywhere: with audit below tenancy it must break.
    layers.insert(layers.index("tenancy") + 1, "audit")
    roots = ", ".join(f'"{p}"' for p in config["root_packages"])
    listed = ", ".join(f'"{layer}"' for layer in layers)
    (tmp_path / "contract.toml").write_text(
        f"[tool.importlinter]\nroot_packages = [{roots}]\n\n"
        f'[[tool.importlinter.contracts]]\nname = "reversed"\ntype = "layers"\nlayers = [{listed}]\n'
    )
    result = subprocess.run(
        [*LINT, "--no-cache", "--config", str(tmp_path / "contract.toml")],
        cwd=BASE,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode != 0
    assert "BROKEN" in result.stdout and "audit" in result.stdout and "tenancy" in result.stdout
