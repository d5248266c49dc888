"""axe-core in the page: the WCAG 2.1 A and AA rules run by the browser on the rendered page (colours, focus
order, names, landmarks, contrast as drawn), which no check of the HTML text can do.

axe-core comes from the npm registry, pinned by `tests/e2e/package-lock.json` and installed by `.ci/run`
(`npm ci` in tests/e2e); it is injected by Playwright into a context opened with `bypass_csp` (our pages' CSP
allows no script of anyone's, rightly). Nothing is fetched from a CDN.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest

AXE = Path(__file__).resolve().parent / "node_modules" / "axe-core" / "axe.min.js"
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
BLOCKING = ("serious", "critical")
DESKTOP = {"viewport": {"width": 1280, "height": 900}}
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True}
WIDTHS = {"desktop": DESKTOP, "phone": PHONE}

_RUN = """async (tags) => {
  const result = await axe.run(document, {runOnly: {type: "tag", values: tags}, resultTypes: ["violations"]});
  return result.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.slice(0, 5).map(n =>
      n.target.join(" ") + " — " + (n.failureSummary || "").split("\\n").join(" "))}));
}"""


@cache
def axe_source() -> str:
    """axe.min.js, or skip (fail under CI) when `npm ci` has not been run in tests/e2e."""
    if not AXE.exists():
        reason = "axe-core is not installed (cd tests/e2e && npm ci)"
        if os.environ.get("CI", "").strip().lower() not in ("", "0", "false"):
            pytest.fail(f"{reason} — CI must check accessibility (.ci/run installs it)", pytrace=False)
        pytest.skip(reason)
    return AXE.read_text(encoding="utf-8")


@dataclass
class Finding:
    page: str
    rule: str
    impact: str
    help: str
    nodes: list[str]

    def __str__(self) -> str:
        return f"{self.page}: {self.impact} {self.rule} ({self.help})\n    " + "\n    ".join(self.nodes)


async def new_context(browser: Any, width: str, lang: str = "zh-CN", **extra: Any) -> Any:
    """A browser context at a named width that lets the audit script in."""
    axe_source()
    return await browser.new_context(**WIDTHS[width], locale=lang, bypass_csp=True, **extra)


async def audit(page: Any, name: str) -> list[Finding]:
    """The serious and critical WCAG 2.1 AA findings on the page as it is now."""
    if not await page.evaluate("() => typeof window.axe !== 'undefined'"):
        await page.add_script_tag(content=axe_source())
    violations = await page.evaluate(_RUN, TAGS)
    return [Finding(name, v["id"], v["impact"], v["help"], v["nodes"]) for v in violations
            if v["impact"] in BLOCKING]


def report(findings: list[Finding]) -> str:
    return f"{len(findings)} serious or critical finding(s):\n" + "\n".join(str(f) for f in findings)
