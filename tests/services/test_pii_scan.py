"""Table tests for the one scan that keeps personal data out of text other people see: generic
numbers, the person's own identity, and the dodges (full-width, spaces, separators, invisible
characters, mixed) that must not hide either."""
from __future__ import annotations

import pytest

from app.pii_scan import find_pii
from tests.factories import (
    SECRET_ADDRESS, SECRET_ID_NUMBER, SECRET_NAME, SECRET_PHONE, id_number,
)


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


# --- dodges: the same data typed so that a plain pattern would miss it ---------------------------

FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")
IDENTITY = {"real_name": SECRET_NAME, "id_number": SECRET_ID_NUMBER, "phone": SECRET_PHONE,
            "address": SECRET_ADDRESS}


@pytest.mark.parametrize("text, expected", [
    # full-width digits, alone and mixed with ASCII ones
    ("电话１３８０５９５１２３４", [("phone", "１３８０５９５１２３４")]),
    ("电话１38０5951２34", [("phone", "１38０5951２34")]),
    ("身份证３５０５０５１９５００３１２１２３０", [("id_number", "３５０５０５１９５００３１２１２３０")]),
    (f"卡号{CARD_16.translate(FULL_WIDTH)}", [("bank_card", CARD_16.translate(FULL_WIDTH))]),
    # separators inside the number
    ("电话138.0595.1234", [("phone", "138.0595.1234")]),
    ("电话138_0595_1234", [("phone", "138_0595_1234")]),
    ("电话138/0595/1234", [("phone", "138/0595/1234")]),
    ("电话138·0595·1234", [("phone", "138·0595·1234")]),
    ("电话138－0595－1234", [("phone", "138－0595－1234")]),   # full-width hyphen
    ("电话138—0595—1234", [("phone", "138—0595—1234")]),      # em dash
    ("电话1 3 8 0 5 9 5 1 2 3 4", [("phone", "1 3 8 0 5 9 5 1 2 3 4")]),
    ("电话138\u30000595\u30001234", [("phone", "138\u30000595\u30001234")]),  # ideographic space
    ("电话138\t0595\n1234", [("phone", "138\t0595\n1234")]),
    # invisible characters between the digits
    ("电话138\u200b0595\u200c1234", [("phone", "138\u200b0595\u200c1234")]),
    ("电话1\u20603\u200d805951234", [("phone", "1\u20603\u200d805951234")]),
    ("电话138\ufeff05951234", [("phone", "138\ufeff05951234")]),
    ("电话138\u00ad0595\u00ad1234", [("phone", "138\u00ad0595\u00ad1234")]),  # soft hyphens
    # circled and keycap digits, Chinese numerals
    ("电话①③⑧⓪⑤⑨⑤①②③④", [("phone", "①③⑧⓪⑤⑨⑤①②③④")]),
    ("电话一三八零五九五一二三四", [("phone", "一三八零五九五一二三四")]),
    ("电话幺三八〇五九五幺二三四", [("phone", "幺三八〇五九五幺二三四")]),
    # mixed: full-width, separators and an invisible character at once
    ("电话＋８６ １３８-０５９５\u200b１２３４", [("phone", "＋８６ １３８-０５９５\u200b１２３４")]),
    ("座机（０５９５）８７６５－４３２１", [("phone", "（０５９５）８７６５－４３２１")]),
])
def test_dodged_numbers_are_found(text, expected):
    assert spans(text) == expected


@pytest.mark.parametrize("text", [
    f"{SECRET_NAME[0]} {SECRET_NAME[1:]}阿婆独居",          # 林 秀英
    f"{SECRET_NAME[0]}\u3000{SECRET_NAME[1:]}阿婆独居",     # full-width space
    f"{SECRET_NAME[0]}-{SECRET_NAME[1]}-{SECRET_NAME[2]}阿婆独居",
    f"{SECRET_NAME[0]}.{SECRET_NAME[1]}.{SECRET_NAME[2]}阿婆独居",
    f"{SECRET_NAME[0]}·{SECRET_NAME[1]}·{SECRET_NAME[2]}阿婆独居",
    f"{SECRET_NAME[0]}_{SECRET_NAME[1]}_{SECRET_NAME[2]}阿婆独居",
    f"{SECRET_NAME[0]}/{SECRET_NAME[1]}/{SECRET_NAME[2]}阿婆独居",
    "\u200b".join(SECRET_NAME) + "阿婆独居",                # zero-width spaces
    "\u200d".join(SECRET_NAME) + "阿婆独居",                # zero-width joiners
    f"{SECRET_NAME[0]} \u200b- {SECRET_NAME[1:]}阿婆独居",  # mixed
])
def test_a_split_name_is_found(text):
    assert [f["kind"] for f in find_pii(text, SECRET_NAME)] == ["real_name"]


@pytest.mark.parametrize("text, kind", [
    (f"{SECRET_NAME[1:]}阿婆独居", "real_name"),              # the given name alone
    (f"{SECRET_NAME[1]} {SECRET_NAME[2]}阿婆独居", "real_name"),
    ("尾号" + SECRET_PHONE[-8:], "phone"),                    # most of her number
    ("生日1950-03-12", "id_number"),                          # her birth date, from her ID number
    (f"证件后八位{SECRET_ID_NUMBER[-8:]}", "id_number"),
    (f"住在{SECRET_ADDRESS}", "address"),
    ("住在东张村", "address"),                                 # her village: finer than the town
    ("家门牌是东张路 12 号", "address"),
])
def test_the_persons_own_identity_is_found(text, kind):
    assert [f["kind"] for f in find_pii(text, IDENTITY)] == [kind]


@pytest.mark.parametrize("text", [
    "轮椅250元，希望2026年春节前送到。",
    "价格 250 元，2026 年 3 月 15 日前。",
    "编号 1234-5678 的病房，3.5 公里远。",
    "阿婆今年76岁，住在界山镇，一个人生活。",   # the town is public
    "林阿婆独居，家里有3口人。",               # the surname alone is not her name
    "每月 1200 元 / 3 口人，12号去医院。",
    "二〇二六年三月，一三五号床",               # Chinese numerals in ordinary text
    "尾号1234",                               # four digits of a phone are not the phone
])
def test_ordinary_text_about_the_person_is_not_flagged(text):
    assert find_pii(text, IDENTITY) == []


@pytest.mark.parametrize("alias, identity, refused", [
    ("林阿婆", IDENTITY, False),
    ("阿婆", IDENTITY, False),
    ("英姨", IDENTITY, False),                 # one character of a two-character given name
    (SECRET_NAME, IDENTITY, True),
    (SECRET_NAME[1:], IDENTITY, True),
    (f"{SECRET_NAME[0]} {SECRET_NAME[1:]}", IDENTITY, True),
    ("阿婆" + SECRET_PHONE[-4:], IDENTITY, True),  # in an alias, four digits of her phone
    ("阿婆1950", IDENTITY, True),                  # or her birth year
    ("东张村阿婆", IDENTITY, True),
    ("阿芳", {"real_name": "王芳"}, True),          # a one-character given name, in an alias
    ("王阿婆", {"real_name": "王芳"}, False),
    ("阿明", {"real_name": "欧阳明"}, True),        # a compound surname is still the surname
    ("欧阳叔", {"real_name": "欧阳明"}, False),
])
def test_alias_rules(alias, identity, refused):
    assert bool(find_pii(alias, identity, alias=True)) is refused


def test_a_one_character_given_name_is_not_searched_in_ordinary_text():
    assert find_pii("明天送到，芳香的花", {"real_name": "王芳"}) == []
    assert find_pii("明天送到", {"real_name": "欧阳明"}) == []
