"""The urgency badges' colours in site.css meet WCAG AA (4.5:1) for their text. (The browser
tests check the same on the rendered page.)"""
from __future__ import annotations

import re
from pathlib import Path

from tests.site.contrast import contrast_ratio, parse_colour

CSS = Path(__file__).resolve().parents[2] / "public_site" / "static" / "site.css"


def test_contrast_ratio_matches_known_values():
    assert round(contrast_ratio((0, 0, 0), (255, 255, 255)), 2) == 21.0
    assert round(contrast_ratio(parse_colour("#777"), parse_colour("#fff")), 2) == 4.48


def test_every_urgency_badge_has_aa_contrast_in_the_stylesheet():
    rules = dict(re.findall(r"\.lv-(\w+)\{([^}]*)\}", CSS.read_text()))
    assert set(rules) == {"red", "orange", "yellow", "blue"}
    for level, body in rules.items():
        props = dict(part.split(":", 1) for part in body.split(";") if part)
        ratio = contrast_ratio(parse_colour(props["color"]), parse_colour(props["background"]))
        assert ratio >= 4.5, (level, ratio)
