"""Table tests for the scan that keeps personal data out of a wish's public text."""
from __future__ import annotations

import pytest

from app.pii_scan import find_pii
from tests.factories import SECRET_NAME, id_number


def luhn_complete(body: str) -> str:
    """`body` plus the check digit that makes it pass the Luhn check."""
    for check in "0123456789":
        digits = body + check
        total = 0
        for i, ch in enumerate(reversed(digits)):
            n = int(ch) * (2 if i % 2 else 1)
            total += n - 9 if n > 9 else n
        if total % 10 == 0:
            return digits
    raise AssertionError("unreachable")


CARD_16 = luhn_complete("622202123456789")
CARD_19 = luhn_complete("622848001234567890")
CARD_16_BAD = CARD_16[:-1] + str((int(CARD_16[-1]) + 1) % 10)
ID_WITH_X = next(n for n in (id_number("19621108", f"{s:03d}") for s in range(1000))
                 if n.endswith("X"))


def spans(text: str, real_name: str | None = None) -> list[tuple[str, str]]:
    """(kind, matched text) per finding; the matched text is cut out by the reported span."""
    return [(f["kind"], text[f["start"]:f["end"]]) for f in find_pii(text, real_name)]


@pytest.mark.parametrize("text, expected", [
    # mobile numbers, bare and written the ways people write them
    ("联系电话13805951234。", [("phone", "13805951234")]),
    ("联系电话 138 0595 1234 找他", [("phone", "138 0595 1234")]),
    ("电话138-0595-1234", [("phone", "138-0595-1234")]),
    ("电话+86 138 0595 1234", [("phone", "+86 138 0595 1234")]),
    ("电话+8613805951234", [("phone", "+8613805951234")]),
    ("电话86-13805951234", [("phone", "86-13805951234")]),
    # landlines
    ("座机0595-87654321", [("phone", "0595-87654321")]),
    ("座机059587654321", [("phone", "059587654321")]),
    ("座机 010-12345678", [("phone", "010-12345678")]),
    ("座机（0595）8765 4321", [("phone", "（0595）8765 4321")]),
    # resident ID numbers, with a digit or an X at the end
    ("身份证350505195003121230", [("id_number", "350505195003121230")]),
    (f"身份证{ID_WITH_X}号", [("id_number", ID_WITH_X)]),
    (f"身份证{ID_WITH_X.lower()}", [("id_number", ID_WITH_X.lower())]),
    # bank cards: Luhn-valid 16-19 digits, plain or grouped
    (f"卡号{CARD_16}", [("bank_card", CARD_16)]),
    (f"卡号{CARD_19}，开户行泉港支行", [("bank_card", CARD_19)]),
    (f"卡号 {CARD_16[:4]} {CARD_16[4:8]} {CARD_16[8:12]} {CARD_16[12:]}",
     [("bank_card", f"{CARD_16[:4]} {CARD_16[4:8]} {CARD_16[8:12]} {CARD_16[12:]}")]),
    (f"卡号{CARD_16[:4]}-{CARD_16[4:8]}-{CARD_16[8:12]}-{CARD_16[12:]}",
     [("bank_card", f"{CARD_16[:4]}-{CARD_16[4:8]}-{CARD_16[8:12]}-{CARD_16[12:]}")]),
    # several at once, in order of position
    ("电话13805951234，身份证350505195003121230",
     [("phone", "13805951234"), ("id_number", "350505195003121230")]),
])
def test_finds_personal_data_with_its_span(text, expected):
    assert spans(text) == expected


@pytest.mark.parametrize("text", [
    "轮椅估价80000分，约800元。",
    "希望在2026年春节前收到。",
    "2026-03-12 去医院复查，下次 2026/04/01。",
    "家里有3口人，月收入1200元，房子建于1985年。",
    f"一个不通过校验的数字 {CARD_16_BAD}",  # 16 digits, Luhn-invalid: not a card
    "编号 12345678 的病房",
    "需要 100000000 分的修缮费用",
    "阿婆今年76岁，住在界山镇。",
])
def test_ordinary_numbers_are_not_flagged(text):
    assert find_pii(text) == []


def test_real_name_is_found_every_time_it_appears():
    text = f"{SECRET_NAME}阿婆独居，{SECRET_NAME}的儿子在外地。"
    found = find_pii(text, SECRET_NAME)
    assert [(f["kind"], f["start"], f["end"]) for f in found] == [
        ("real_name", 0, 3), ("real_name", 8, 11)]


def test_name_is_only_searched_when_given():
    assert find_pii(f"{SECRET_NAME}阿婆独居") == []
    assert find_pii("林阿婆独居", SECRET_NAME) == []  # the alias shares a character only


def test_findings_show_only_a_masked_fragment():
    found = find_pii("电话13805951234", None)
    assert found[0]["text"] != "13805951234"
    assert "0595" not in found[0]["text"]


def test_id_number_is_not_also_reported_as_card_or_phone():
    number = "350505195003121230"
    assert [f["kind"] for f in find_pii(f"号码{number}")] == ["id_number"]
