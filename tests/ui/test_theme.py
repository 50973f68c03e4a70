"""The committed, built CSS is current (every class the templates use exists in it), carries the ARM
palette, and nothing loads from a CDN. Rebuild with ``make css`` after changing templates."""

import re
from pathlib import Path

from theme.templatetags.arm_ui import CHIP_CLASSES

ROOT = Path(__file__).resolve().parents[2]
CSS = (ROOT / "theme/static/css/dist/styles.css").read_text()
# Django admin's templates are styled by the admin's own CSS plus theme/static/arm/admin.css, not Tailwind.
TEMPLATES = sorted(p for p in (ROOT / "templates").rglob("*.html") if "admin" not in p.relative_to(ROOT).parts[1:2])
# Classes that are hooks for ui.js or htmx, not styles.
HOOKS = {"toast", "debounce", "htmx-indicator"}
PALETTE = ("navy", "blue", "accent", "surface", "text", "muted", "success", "warning", "danger", "border")


def css_selector(name: str) -> str:
    escaped = re.sub(r"([^a-zA-Z0-9_-])", r"\\\1", name)
    # CSS escapes a leading digit as its code point (``2xl:…`` is written ``.\32 xl\:…``).
    return "." + re.sub(r"^([0-9])", lambda m: f"\\{ord(m.group(1)):x} ", escaped)


def template_classes() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in TEMPLATES:
        text = path.read_text()
        for attr in re.findall(r'\bclass="([^"]*)"', text):
            attr = re.sub(r"{%.*?%}|{{.*?}}", " ", attr)
            for name in attr.split():
                found.setdefault(name, set()).add(path.name)
    return found


def test_every_template_class_is_in_the_built_css():
    missing = {
        name: sorted(files)
        for name, files in template_classes().items()
        if name not in HOOKS and css_selector(name) not in CSS
    }
    assert not missing, f"classes missing from the built CSS (run `make css`): {missing}"


def test_chip_classes_are_in_the_built_css():
    names = {name for classes in CHIP_CLASSES.values() for name in classes.split()}
    missing = sorted(n for n in names if css_selector(n) not in CSS)
    assert not missing, missing


def test_the_arm_palette_is_defined_as_theme_tokens():
    for token in PALETTE:
        assert f"--color-arm-{token}:" in CSS, token


def test_no_template_loads_anything_from_another_host():
    for path in TEMPLATES:
        text = path.read_text()
        assert not re.search(r'<(script|link)[^>]+(src|href)="(https?:)?//', text), path
