"""Find personal data in public text (a wish, a payout purpose, a nickname) before it is shown.

Phone numbers (mainland mobile and landline), resident ID numbers, bank card numbers (13–19
digits passing the Luhn check, spaces or dashes allowed) and the beneficiary's real name.
Each finding names its kind and its [start, end) span in the text.
"""
from __future__ import annotations

import re

_MOBILE = re.compile(r"(?<!\d)(?:\+?86[- ]?)?1[3-9]\d(?:[- ]?\d{4}){2}(?!\d)")
# Area code (plain or in ASCII/full-width brackets), then 7-8 digits, maybe split by a space/dash.
_LANDLINE = re.compile(r"(?<!\d)(?:[(（]0\d{2,3}[)）]|0\d{2,3})[- ]?\d{3,4}[- ]?\d{4}(?!\d)")
_ID_NUMBER = re.compile(r"(?<![\dA-Za-z])\d{17}[\dXx](?![\dA-Za-z])")
_CARD = re.compile(r"(?<!\d)\d(?:[ -]?\d){12,18}(?!\d)")


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch)
        if i % 2:
            n *= 2
            if n > 9:
                n -= 9
        total += n
    return total % 10 == 0


def find_pii(text: str, real_name: str | None = None) -> list[dict]:
    found: list[dict] = []
    taken: list[tuple[int, int]] = []

    def add(kind: str, start: int, end: int) -> None:
        if any(s < end and start < e for s, e in taken):
            return
        taken.append((start, end))
        found.append({"kind": kind, "start": start, "end": end, "text": _mask(text[start:end])})

    for m in _ID_NUMBER.finditer(text):
        add("id_number", m.start(), m.end())
    for m in _MOBILE.finditer(text):
        add("phone", m.start(), m.end())
    for m in _CARD.finditer(text):
        digits = re.sub(r"\D", "", m.group())
        if 13 <= len(digits) <= 19 and _luhn(digits):
            add("bank_card", m.start(), m.end())
    for m in _LANDLINE.finditer(text):
        add("phone", m.start(), m.end())
    if real_name and len(real_name) >= 2:
        start = text.find(real_name)
        while start != -1:
            add("real_name", start, start + len(real_name))
            start = text.find(real_name, start + 1)
    return sorted(found, key=lambda f: f["start"])


def _mask(fragment: str) -> str:
    if len(fragment) <= 2:
        return fragment[0] + "*"
    return fragment[0] + "*" * (len(fragment) - 2) + fragment[-1]
