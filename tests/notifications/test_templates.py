"""Template values fit WeChat's field rules (one bad value makes WeChat refuse the message)."""
from __future__ import annotations

from app.notifications.templates import TEMPLATES, phrase, thing, time_field

PAYLOAD = {"claim_id": "clm_x", "wish_id": "wsh_y", "wish_title": "一台轮椅",
           "due_at": "2026-01-01T16:30:00Z", "seconds_left": 7200, "reason": "照片看不清",
           "application_id": "apl_z", "status": "reviewing", "hint": "核实已完成，正在审核"}


def test_thing_is_cut_to_twenty_characters_with_an_ellipsis():
    assert thing("一台轮椅") == "一台轮椅"
    assert thing("字" * 20) == "字" * 20
    cut = thing("字" * 21)
    assert len(cut) == 20 and cut == "字" * 19 + "…"


def test_thing_never_ends_on_half_a_character_and_keeps_one_line():
    family = "\U0001F469\u200d\U0001F467"  # woman ZWJ girl: one picture
    assert thing("a" * 17 + family + "b" * 10) == "a" * 17 + "…"
    assert thing("a" * 18 + "e\u0301" + "x" * 5) == "a" * 18 + "…"  # é is e + U+0301
    assert thing("a" * 19 + "x") == "a" * 19 + "x"
    assert thing("第一行\n第二行\t\x00结束") == "第一行 第二行 结束"
    assert thing("") == "-" and thing(None) == "-"


def test_phrase_keeps_at_most_five_chinese_characters():
    assert phrase("已超时") == "已超时"
    assert phrase("OK已经完成了的事情!") == "已经完成了的"[:5]


def test_time_is_shown_in_china_time():
    assert time_field("2026-01-01T16:30:00Z") == "2026年01月02日 00:30"


def test_every_topic_builds_fields_within_limits_from_a_long_payload():
    long = dict(PAYLOAD, wish_title="很长的心愿标题" * 8, reason="异议原因写得非常详细" * 10,
                hint="申请已受理，工作人员将尽快上门核实家庭情况" * 3)
    for topic, template in TEMPLATES.items():
        data = template.build(long)
        assert data, topic
        for key, value in data.items():
            if key.startswith("thing"):
                assert 1 <= len(value) <= 20, (topic, key, value)
            if key.startswith("phrase"):
                assert 1 <= len(value) <= 5, (topic, key, value)
            if key.startswith("time"):
                assert value == "2026年01月02日 00:30", (topic, key, value)
        assert template.page(long).startswith("pages/"), topic
