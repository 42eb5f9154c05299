"""How the pages word things: urgency, kinds, categories, places, money and time, in Chinese."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from app.beneficiaries.models import CATEGORIES, CATEGORY_LABELS, LEVELS
from app.divisions import TOWNS, town_name
from app.wishes.models import KINDS

CST = timezone(timedelta(hours=8))  # China Standard Time: no daylight saving

# Urgency is a word and a colour, never the colour alone. Colours are in site.css (.lv-red ...),
# each pair of text and background at WCAG AA contrast (tests/site check the ratio).
LEVEL_WORDS = {"red": "紧急", "orange": "较急", "yellow": "一般", "blue": "关注"}
KIND_WORDS = {"goods": "物品", "service": "服务", "education": "助学"}
STATUS_WORDS = {"open": "待认领", "claimed": "已认领", "delivered": "已送达",
                "fulfilled": "已实现"}
LEDGER_KIND_WORDS = {"in_kind_fulfilment": "心愿实现", "money_donation": "捐款",
                     "disbursement": "基金拨付", "reversal": "冲正"}
# The fields of a ledger entry a page shows, each checked by the verifier against the leaf.
SHOWN_ENTRY_FIELDS = ("kind", "at", "item", "value_fen", "donor", "wish_id")

FILTERS = {
    "town": [(code, town_name(code)) for code in TOWNS],
    "kind": [(k, KIND_WORDS[k]) for k in KINDS],
    "category": [(c, CATEGORY_LABELS[c]) for c in CATEGORIES],
    "level": [(lv, LEVEL_WORDS[lv]) for lv in LEVELS],
}


def yuan(fen: int | None) -> str:
    """12345 -> `¥123.45`; whole yuan without decimals."""
    if fen is None:
        return ""
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(int(fen)), 100)
    return f"{sign}¥{whole:,}" + (f".{cents:02d}" if cents else "")


def local_time(value: datetime | str | None, with_time: bool = True) -> str:
    """UTC (a datetime or RFC 3339 text) -> `2026-12-07 18:59` in China Standard Time."""
    if not value:
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    local = value.astimezone(CST)
    return local.strftime("%Y-%m-%d %H:%M" if with_time else "%Y-%m-%d")


def ledger_row(index: int, leaf: bytes) -> dict:
    """What a page shows of one ledger entry, read from its leaf: the shown fields (the verifier
    compares them with the leaf it hashes) and the town, if the entry names one. Never the
    beneficiary's alias, which older entries still carry."""
    body = json.loads(bytes(leaf).decode("utf-8"))
    row = {name: body.get(name) for name in SHOWN_ENTRY_FIELDS}
    row["index"] = index
    row["kind_word"] = LEDGER_KIND_WORDS.get(row["kind"], row["kind"] or "")
    row["town"] = town_name(body.get("town")) if isinstance(body.get("town"), str) else ""
    row["reverses_index"] = body.get("reverses_index")
    return row


def register(app) -> None:
    app.jinja_env.filters.update(yuan=yuan, local_time=local_time, town=town_name)
    app.jinja_env.globals.update(LEVEL_WORDS=LEVEL_WORDS, KIND_WORDS=KIND_WORDS,
                                 STATUS_WORDS=STATUS_WORDS, CATEGORY_LABELS=CATEGORY_LABELS,
                                 SHOWN_ENTRY_FIELDS=SHOWN_ENTRY_FIELDS)
