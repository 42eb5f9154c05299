"""Charts as inline SVG, drawn on the server: no chart service, no script, no other origin.

Each chart is an <svg role="img"> with a <title>; the page puts a table of the same numbers
next to it. Colours are SVG presentation attributes (not style attributes), which the pages'
Content-Security-Policy allows.
"""
from __future__ import annotations

from markupsafe import Markup, escape

WIDTH = 400  # user units; the page scales the chart to its column (at most 640 px)
BAR = "#1d4ed8"
AXIS = "#475569"
TEXT = "#1e293b"


def _svg(height: int, title: str, body: list[str]) -> Markup:
    return Markup(
        f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{escape(title)}</title>{''.join(body)}</svg>")


def columns(points: list[tuple[str, float, str]], title: str, *, top: float | None = None,
            colour: str = BAR) -> Markup:
    """Vertical bars: (label, value, text above the bar); `top` is the value of a full bar."""
    height, left, bottom, head = 220, 4, 30, 22
    plot = height - bottom - head
    top = top or max([v for _, v, _ in points] + [1])
    step = (WIDTH - 2 * left) / max(len(points), 1)
    body = [f'<line x1="{left}" y1="{head + plot}" x2="{WIDTH - left}" y2="{head + plot}" '
            f'stroke="{AXIS}" stroke-width="1"/>']
    for i, (label, value, text) in enumerate(points):
        x = left + i * step
        h = plot * (value / top) if top else 0
        y = head + plot - h
        body.append(f'<rect x="{x + step * 0.15:.1f}" y="{y:.1f}" width="{step * 0.7:.1f}" '
                    f'height="{h:.1f}" fill="{colour}"/>')
        if text:
            body.append(f'<text x="{x + step / 2:.1f}" y="{y - 6:.1f}" font-size="13" '
                        f'text-anchor="middle" fill="{TEXT}">{escape(text)}</text>')
        body.append(f'<text x="{x + step / 2:.1f}" y="{head + plot + 18}" font-size="10" '
                    f'text-anchor="middle" fill="{TEXT}">{escape(label)}</text>')
    return _svg(height, title, body)


def bars(rows: list[tuple[str, list[tuple[float, str]], str]], title: str, *,
         top: float | None = None, legend: list[tuple[str, str]] | None = None) -> Markup:
    """Horizontal (stacked) bars: (label, [(value, colour), ...], text after the bar)."""
    label_w, row_h, head = 90, 32, 34 if legend else 8
    height = head + row_h * max(len(rows), 1) + 8
    top = top or max([sum(v for v, _ in parts) for _, parts, _ in rows] + [1])
    span = WIDTH - label_w - 60
    body = []
    if legend:
        x = 8
        for name, colour in legend:
            body.append(f'<rect x="{x}" y="8" width="14" height="14" fill="{colour}" '
                        f'stroke="{TEXT}" stroke-width="0.5"/>'
                        f'<text x="{x + 20}" y="20" font-size="13" fill="{TEXT}">'
                        f'{escape(name)}</text>')
            x += 30 + 13 * len(name)
    for i, (label, parts, text) in enumerate(rows):
        y = head + i * row_h
        body.append(f'<text x="{label_w - 8}" y="{y + 21}" font-size="13" text-anchor="end" '
                    f'fill="{TEXT}">{escape(label)}</text>')
        x = float(label_w)
        for value, colour in parts:
            w = span * value / top if top else 0
            if w > 0:
                body.append(f'<rect x="{x:.1f}" y="{y + 6}" width="{w:.1f}" height="{row_h - 12}" '
                            f'fill="{colour}" stroke="#ffffff" stroke-width="1"/>')
            x += w
        body.append(f'<text x="{x + 6:.1f}" y="{y + 21}" font-size="13" fill="{TEXT}">'
                    f'{escape(text)}</text>')
    return _svg(height, title, body)
