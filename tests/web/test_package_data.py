"""The wheel ships every page, stylesheet, script and compiled catalogue the web edge reads at run time: each
such file of the source tree is matched by a package-data glob of pyproject.toml (setuptools' own globbing)."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "notifier"


def test_every_page_static_and_catalogue_file_is_package_data() -> None:
    """No page, stylesheet, script or catalogue under notifier/web or notifier/locale is left out of the wheel."""
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"][
        "package-data"]["notifier"]
    shipped = {path for pattern in globs for path in PACKAGE.glob(pattern) if path.is_file()}
    needed = {path for folder in ("web", "locale") for path in (PACKAGE / folder).rglob("*")
              if path.is_file() and path.suffix in (".html", ".css", ".js", ".mo", ".po")}
    assert needed and needed <= shipped, sorted(str(p.relative_to(PACKAGE)) for p in needed - shipped)
