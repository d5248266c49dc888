"""Reading our own pages' markup as a browser's accessibility tree would: which form controls have no label."""

from __future__ import annotations

from html.parser import HTMLParser

CONTROLS = ("input", "select", "textarea")
UNLABELLED_TYPES = ("hidden", "submit", "button", "reset", "image")  # named by their value or not shown at all


class _Controls(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.label_depth = 0
        self.label_for: set[str] = set()
        self.controls: list[tuple[str, dict[str, str], bool]] = []  # (tag, attributes, inside a <label>)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "label":
            self.label_depth += 1
            if values.get("for"):
                self.label_for.add(values["for"])
        elif tag in CONTROLS and values.get("type", "text") not in UNLABELLED_TYPES:
            self.controls.append((tag, values, self.label_depth > 0))

    def handle_endtag(self, tag: str) -> None:
        if tag == "label" and self.label_depth:
            self.label_depth -= 1


def unlabelled_controls(html: str) -> list[str]:
    """Every visible form control that has no accessible name: not inside a <label>, not the target of a
    `<label for>`, and without aria-label/aria-labelledby — whether or not it has an id."""
    parser = _Controls()
    parser.feed(html)
    missing = []
    for tag, values, wrapped in parser.controls:
        named = (wrapped or (values.get("id", "") in parser.label_for and values.get("id"))
                 or values.get("aria-label") or values.get("aria-labelledby"))
        if not named:
            missing.append(f"<{tag} name={values.get('name', '?')!r} id={values.get('id')!r}>")
    return missing
