"""The one scan that keeps personal data out of every text another person sees.

Used for a wish's title, story and item, a beneficiary's public alias, reject, dispute and
withdrawal reasons, notes on delivery proofs, donor nicknames and disbursement purposes. Two kinds
of finding:

- generic: mainland mobile and landline numbers, resident ID numbers, bank card numbers (13–19
  digits passing the Luhn check);
- the person's own identity, when given: their real name (the whole name, any part of two or
  more characters other than the surname alone, and in an alias even a one-character given
  name), their ID number and phone number (any run of 8 of their characters; 4 in an alias), and
  their address (the whole of it, and what is more precise than the town: the village and the
  street and house number).

The text is normalised before matching, so that a number or a name cannot be hidden by how it is
typed: NFKC (full-width digits and letters become ASCII, ① becomes 1), other decimal digits and
Chinese numerals become ASCII digits, case is folded, and spaces, separators (- . · _ / and the
like) and invisible format characters (zero-width spaces, joiners, variation selectors) are
dropped. Each finding names its kind and its [start, end) span in the *original* text, and shows
only a masked fragment of it.
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from app.errors import Invalid

LABELS = {"phone": "电话号码", "id_number": "身份证号", "bank_card": "银行卡号",
          "real_name": "真实姓名", "address": "住址"}

# --- normalisation -----------------------------------------------------------------------------

# Spaces, line breaks, controls, format characters (U+200B..U+200F, U+2060, U+FEFF, soft
# hyphen), combining marks (variation selectors, the keycap U+20E3), dashes and connectors (_).
_DROP_CATEGORIES = frozenset({"Zs", "Zl", "Zp", "Cc", "Cf", "Mn", "Me", "Pd", "Pc"})
# Separators people put inside a number or a name that are not in those categories.
_DROP_CHARS = frozenset(".·•・‧∙⋅/\\|~'")
_CHINESE_DIGITS = {c: str(i) for i, group in enumerate(
    ("〇零", "一壹幺", "二贰", "三叁", "四肆", "五伍", "六陆", "七柒", "八捌", "九玖"))
    for c in group}


def normalise(text: str) -> tuple[str, list[int]]:
    """The text as it is matched, and for each of its characters the index of the original
    character it came from."""
    out: list[str] = []
    where: list[int] = []
    for index, original in enumerate(text):
        for ch in unicodedata.normalize("NFKC", original):
            for c in ch.lower():
                if c in _DROP_CHARS or unicodedata.category(c) in _DROP_CATEGORIES:
                    continue
                if c.isdecimal():
                    c = str(unicodedata.decimal(c))
                else:
                    c = _CHINESE_DIGITS.get(c, c)
                out.append(c)
                where.append(index)
    return "".join(out), where


def _norm(value: str | None) -> str:
    return normalise(value)[0] if value else ""


# --- generic patterns (on normalised text: no spaces or dashes are left inside a number) -------

_MOBILE = re.compile(r"(?<!\d)(?:\+?86)?1[3-9]\d{9}(?!\d)")
# Area code (plain or in brackets), then a 7-8 digit local number.
_LANDLINE = re.compile(r"(?<!\d)(?:\(0\d{2,3}\)|0\d{2,3})\d{7,8}(?!\d)")
_ID_NUMBER = re.compile(r"(?<![\da-z])\d{17}[\dx](?![\da-z])")
_CARD = re.compile(r"(?<!\d)\d{13,19}(?!\d)")


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


# --- the person's identity ---------------------------------------------------------------------

COMPOUND_SURNAMES = ("欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "尉迟", "公孙", "慕容",
                     "令狐", "司徒", "夏侯", "长孙", "宇文", "轩辕", "端木", "南宫", "西门",
                     "独孤", "澹台", "申屠", "钟离", "闻人", "呼延", "百里", "万俟", "单于")
DIGIT_RUN = 8        # this many of the person's ID or phone characters in a row give them away
ALIAS_DIGIT_RUN = 4  # in an alias, which may hold nothing of them at all (a birth year, a tail)
_TOWN = re.compile(r"(?:镇|乡|街道)")
_COUNTY = re.compile(r"(?:省|自治区|市|自治州|区|县|旗)")
_VILLAGE = re.compile(r"^(.+?(?:村|社区|居委会))(.*)$")


@dataclass(frozen=True)
class Identity:
    """Whose identity to look for; any field may be missing (or erased)."""
    real_name: str | None = None
    id_number: str | None = None
    phone: str | None = None
    address: str | None = None

    @classmethod
    def of(cls, value: Identity | Mapping | str | None) -> Identity | None:
        if value is None or isinstance(value, Identity):
            return value
        if isinstance(value, str):
            return cls(real_name=value)
        return cls(**{k: value.get(k) for k in ("real_name", "id_number", "phone", "address")})


def _surname(name: str) -> str:
    return name[:2] if name[:2] in COMPOUND_SURNAMES else name[:1]


def name_fragments(real_name: str | None, *, alias: bool = False) -> list[str]:
    """What of a (normalised) name gives the person away, longest first: the name, and every run
    of at least two of its characters that is not the surname alone (a given name, the surname
    with part of the given name); long names only in runs of half their length, so a common
    pair of characters in a long name does not refuse ordinary text. In an alias also the given
    name of one character (王芳 → 芳: 阿芳 is her name)."""
    name = _norm(real_name)
    if len(name) < 2:
        return []
    surname = _surname(name)
    shortest = max(2, (len(name) + 1) // 2)
    found = {name[i:j] for i in range(len(name)) for j in range(i + shortest, len(name) + 1)}
    found = {f for f in found if f not in surname}
    given = name[len(surname):]
    if alias and given:
        found.add(given)
    return sorted(found, key=len, reverse=True)


def _phone_digits(phone: str | None) -> str:
    digits = re.sub(r"\D", "", _norm(phone))
    if digits.startswith("0086"):
        digits = digits[4:]
    elif digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    return digits


def _windows(value: str, size: int) -> set[str]:
    """Every run of `size` characters of `value` (the whole value when it is shorter, if it is
    long enough to mean anything)."""
    if len(value) < size:
        return {value} if len(value) >= 5 else set()
    return {value[i:i + size] for i in range(len(value) - size + 1)}


def address_fragments(address: str | None) -> list[str]:
    """The whole address, and the parts more precise than the town the public already sees:
    what follows the town (or the county), the village in it, and the street and number."""
    value = _norm(address)
    if len(value) < 3:
        return []
    found = {value} if len(value) >= 4 else set()
    marks = list(_TOWN.finditer(value)) or list(_COUNTY.finditer(value))
    rest = value[marks[-1].end():] if marks else value
    parts = [rest]
    village = _VILLAGE.match(rest)
    if village:
        parts += [village.group(1), village.group(2)]
    for part in parts:
        # "12号" alone is any house: a part must carry at least two characters that are not digits
        if len(part) >= 3 and sum(not c.isdigit() for c in part) >= 2:
            found.add(part)
    return sorted(found, key=len, reverse=True)


# --- the scan ----------------------------------------------------------------------------------

def find_pii(text: str, identity: Identity | Mapping | str | None = None, *,
             alias: bool = False) -> list[dict]:
    """Findings in `text`, in order of position: {kind, start, end, text (masked)}.
    `identity`: the person the text is about (or just a real name); `alias=True` applies the
    stricter rules for a public alias, which may hold no part of the identity at all."""
    if not text:
        return []
    norm, where = normalise(text)
    person = Identity.of(identity)
    found: list[dict] = []
    taken: list[tuple[int, int]] = []

    def add(kind: str, start: int, end: int) -> None:  # start, end: in the normalised text
        if any(s < end and start < e for s, e in taken):
            return
        taken.append((start, end))
        first, last = where[start], where[end - 1] + 1
        found.append({"kind": kind, "start": first, "end": last,
                      "text": _mask(text[first:last])})

    for m in _ID_NUMBER.finditer(norm):
        add("id_number", m.start(), m.end())
    for m in _MOBILE.finditer(norm):
        add("phone", m.start(), m.end())
    for m in _CARD.finditer(norm):
        if _luhn(m.group()):
            add("bank_card", m.start(), m.end())
    for m in _LANDLINE.finditer(norm):
        add("phone", m.start(), m.end())
    if person is not None:
        run = ALIAS_DIGIT_RUN if alias else DIGIT_RUN
        for kind, value in (("id_number", _norm(person.id_number)),
                            ("phone", _phone_digits(person.phone))):
            for start, end in _merged(_occurrences(norm, _windows(value, run))):
                add(kind, start, end)
        for kind, fragments in (("real_name", name_fragments(person.real_name, alias=alias)),
                                ("address", address_fragments(person.address))):
            for fragment in fragments:  # longest first: the whole name, not a part of it
                for start, end in _occurrences(norm, [fragment]):
                    add(kind, start, end)
    return sorted(found, key=lambda f: f["start"])


def _occurrences(text: str, needles: Iterable[str]) -> list[tuple[int, int]]:
    spans = []
    for needle in needles:
        start = text.find(needle)
        while start != -1:
            spans.append((start, start + len(needle)))
            start = text.find(needle, start + 1)
    return spans


def _merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Overlapping windows of one number become one finding that covers all of them."""
    merged: list[list[int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(s, e) for s, e in merged]


def _mask(fragment: str) -> str:
    if len(fragment) <= 2:
        return fragment[0] + "*"
    return fragment[0] + "*" * (len(fragment) - 2) + fragment[-1]


def refuse_pii(texts: Mapping[str, str | None], identity: Identity | Mapping | str | None = None,
               *, what: str, alias_fields: Iterable[str] = ()) -> None:
    """422 `pii_in_text` when any of `texts` (field name → text) holds personal data; `errors`
    names each field with its findings. `what` says in Chinese where the text goes."""
    strict = set(alias_fields)
    findings = {}
    for field, text in texts.items():
        hits = find_pii(text or "", identity, alias=field in strict)
        if hits:
            findings[field] = hits
    if findings:
        kinds = sorted({hit["kind"] for hits in findings.values() for hit in hits})
        raise Invalid("pii_in_text",
                      f"{what}含有个人敏感信息（" + "、".join(LABELS[k] for k in kinds)
                      + "），请删除后再提交", errors=findings)
