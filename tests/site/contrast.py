"""WCAG 2.x contrast ratio of two sRGB colours (https://www.w3.org/TR/WCAG21/#dfn-contrast-ratio)."""
from __future__ import annotations

import re


def parse_colour(text: str) -> tuple[int, int, int]:
    """`#b91c1c`, `#fff`, `rgb(185, 28, 28)` or `rgba(185, 28, 28, 1)` -> (r, g, b)."""
    text = text.strip().lower()
    if text.startswith("#"):
        digits = text[1:]
        if len(digits) == 3:
            digits = "".join(d * 2 for d in digits)
        return tuple(int(digits[i:i + 2], 16) for i in (0, 2, 4))
    numbers = re.findall(r"[\d.]+", text)
    if len(numbers) == 4:
        assert float(numbers[3]) == 1, f"translucent colour {text}: contrast depends on what is behind"
    return tuple(int(float(n)) for n in numbers[:3])


def _luminance(rgb: tuple[int, int, int]) -> float:
    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b = (channel(v) for v in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_ratio(a: tuple[int, int, int], b: tuple[int, int, int]) -> float:
    light, dark = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)
