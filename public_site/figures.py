"""The /stats page's charts: each an inline SVG and a table of the same numbers."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from flask import current_app
from markupsafe import Markup

from app.beneficiaries.models import LEVELS
from app.divisions import town_name
from app.stats_series import Series, compute_series
from public_site import charts
from public_site.present import LEVEL_WORDS

# The badge colours of site.css, for the stacked bars of open wishes by town and level.
LEVEL_FILLS = {"red": "#b91c1c", "orange": "#c2410c", "yellow": "#facc15", "blue": "#1d4ed8"}


_lock = threading.Lock()
_cache: dict[int, tuple[float, Series]] = {}  # per app, like app.stats' totals


def series() -> Series:
    """The chart series, computed at most once per STATS_CACHE_SECONDS per process (the page is
    the same for everyone, and a CDN holds it for a while anyway)."""
    ttl = float(current_app.config.get("STATS_CACHE_SECONDS", 5.0))
    key, now = id(current_app._get_current_object()), time.monotonic()
    with _lock:
        hit = _cache.get(key)
        if ttl > 0 and hit is not None and now - hit[0] < ttl:
            return hit[1]
    result = compute_series()
    with _lock:
        _cache[key] = (now, result)
    return result


@dataclass
class Chart:
    title: str
    svg: Markup
    head: list[str]
    rows: list[list[str]]


def _hours(value: float | None) -> str:
    return "—" if value is None else f"{value:g} 小时"


def build(series: Series) -> list[Chart]:
    out = []
    months = [(m[2:].replace("-", "/"), m) for m, _ in series.fulfilled_by_month]
    out.append(Chart(
        "每月实现的心愿", charts.columns(
            [(short, n, str(n) if n else "") for (short, _), (_, n)
             in zip(months, series.fulfilled_by_month)], "每月实现的心愿（近 12 个月）"),
        ["月份", "实现的心愿"], [[m, str(n)] for m, n in series.fulfilled_by_month]))

    points, rows = [], []
    for (short, _), (month, ok, n) in zip(months, series.sla_by_month):
        share = 100.0 * ok / n if n else 0.0
        points.append((short, share, f"{share:.0f}%" if n else ""))
        rows.append([month, str(ok), str(n), f"{share:.0f}%" if n else "—"])
    out.append(Chart(
        "按时送达的认领占比", charts.columns(points, "期限内送达的认领占比（按认领月份）", top=100,
                                    colour="#047857"),
        ["月份", "按时送达", "已有结果的认领", "占比"], rows))

    medians = [("发布到认领", series.median_hours_to_claim),
               ("发布到实现", series.median_hours_to_fulfil)]
    out.append(Chart(
        "所需时间（中位数）", charts.bars(
            [(label, [(value or 0, "#1d4ed8")], _hours(value)) for label, value in medians],
            "从发布到认领、到实现的中位小时数"),
        ["环节", "中位数"], [[label, _hours(value)] for label, value in medians]))

    towns = sorted(series.open_by_town.items())
    out.append(Chart(
        "各乡镇待认领的心愿", charts.bars(
            [(town_name(code), [(levels[lv], LEVEL_FILLS[lv]) for lv in LEVELS],
              str(sum(levels.values()))) for code, levels in towns],
            "各乡镇待认领的心愿（按紧急程度）",
            legend=[(LEVEL_WORDS[lv], LEVEL_FILLS[lv]) for lv in LEVELS]),
        ["乡镇", *(LEVEL_WORDS[lv] for lv in LEVELS), "合计"],
        [[town_name(code), *(str(levels[lv]) for lv in LEVELS), str(sum(levels.values()))]
         for code, levels in towns]))
    return out
