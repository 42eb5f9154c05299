"""What each outbox topic looks like as a WeChat subscribe message.

A topic names the setting that holds its template id, the mini-program page the message opens and
a function that turns the outbox payload into the template's fields. The field keys (`thing1`,
`time2`, ...) are those of the templates chosen in the mini-program console for each topic:

  claim_created   thing1 心愿名称 · time2 截止时间 · thing3 温馨提示
  claim_reminder  thing1 心愿名称 · time2 截止时间 · thing3 温馨提示
  claim_expired   thing1 心愿名称 · phrase2 认领状态 · thing3 温馨提示
  claim_disputed  thing1 心愿名称 · thing2 异议原因 · time3 新的截止时间
  wish_fulfilled  thing1 心愿名称 · phrase2 心愿状态 · thing3 温馨提示
  donation_thanks thing1 捐赠项目 · amount2 捐赠金额 · date3 捐赠时间 · thing4 温馨提示
  application_status thing1 申请事项 · phrase2 办理状态 · thing3 温馨提示

WeChat refuses a whole message (47003) when one value breaks its field's rules, so every value is
cut to its field's limit here: `thing` 20 characters, `phrase` 5 (Chinese only), `time` and
`date` a date, `amount` a currency sign and a number.
"""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Mapping

CHINA = timezone(timedelta(hours=8), "Asia/Shanghai")  # what the donor's watch says
THING_MAX, PHRASE_MAX = 20, 5
ELLIPSIS = "…"
# Characters that only make sense attached to the one before them: never leave one dangling.
_JOINERS = {"\u200d", "\ufe0e", "\ufe0f"}


@dataclass(frozen=True)
class Template:
    setting: str                                   # the config key holding the template id
    page: Callable[[Mapping[str, Any]], str]       # payload -> page path with query
    build: Callable[[Mapping[str, Any]], dict[str, str]]  # payload -> {field key: value}


def _clean(value: Any) -> str:
    """One line of printable text: control characters and line breaks become spaces."""
    text = "".join(" " if unicodedata.category(c)[0] == "C" and c not in _JOINERS else c
                   for c in str(value or ""))
    return " ".join(text.split())


def _attaches(char: str) -> bool:
    return char in _JOINERS or unicodedata.combining(char) > 0


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    end = limit - 1  # room for the ellipsis
    # Never split what reads as one character (é as e + U+0301, an emoji ZWJ sequence): step
    # back while the first character dropped clings to the last kept, or the last kept is a ZWJ.
    while end > 0 and (_attaches(text[end]) or text[end - 1] == "\u200d"):
        end -= 1
    return text[:end].rstrip() + ELLIPSIS


def thing(value: Any) -> str:
    """A `thing` field: at most 20 characters of text, cut with an ellipsis."""
    return _cut(_clean(value), THING_MAX) or "-"


def phrase(value: str) -> str:
    """A `phrase` field: at most 5 Chinese characters (no digits, letters or symbols)."""
    return "".join(c for c in value if "\u4e00" <= c <= "\u9fff")[:PHRASE_MAX]


def time_field(value: str | datetime | None) -> str:
    """A `time` field, in China time: 2026年11月25日 14:30."""
    if value is None:
        return "-"
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(CHINA).strftime("%Y年%m月%d日 %H:%M")


def amount_field(fen: Any) -> str:
    """An `amount` field: ¥ and yuan with two decimals (¥12.50)."""
    try:
        return f"¥{int(fen) / 100:.2f}"
    except (TypeError, ValueError):
        return "-"


def _donation_page(payload: Mapping[str, Any]) -> str:
    return f"pages/donations/detail?id={payload.get('donation_id', '')}"


def _claim_page(payload: Mapping[str, Any]) -> str:
    return f"pages/claims/detail?id={payload['claim_id']}"


def _wish_page(payload: Mapping[str, Any]) -> str:
    return f"pages/wishes/detail?id={payload['wish_id']}"


def _hours_left(payload: Mapping[str, Any]) -> str:
    seconds = int(payload.get("seconds_left") or 0)
    if seconds >= 3600:
        return f"还剩约{round(seconds / 3600)}小时，请尽快送达并上传凭证"
    return "即将到期，请尽快送达并上传凭证"


TEMPLATES: dict[str, Template] = {
    "claim_created": Template(
        "WECHAT_TEMPLATE_CLAIM_CREATED", _claim_page,
        lambda p: {"thing1": thing(p["wish_title"]), "time2": time_field(p["due_at"]),
                   "thing3": thing("请在截止前送达并上传凭证")}),
    "claim_reminder": Template(
        "WECHAT_TEMPLATE_CLAIM_REMINDER", _claim_page,
        lambda p: {"thing1": thing(p["wish_title"]), "time2": time_field(p["due_at"]),
                   "thing3": thing(_hours_left(p))}),
    "claim_expired": Template(
        "WECHAT_TEMPLATE_CLAIM_EXPIRED", _wish_page,
        lambda p: {"thing1": thing(p["wish_title"]), "phrase2": phrase("已超时"),
                   "thing3": thing("认领已超时，心愿已重新开放")}),
    "claim_disputed": Template(
        "WECHAT_TEMPLATE_CLAIM_DISPUTED", _claim_page,
        lambda p: {"thing1": thing(p["wish_title"]), "thing2": thing(p.get("reason")),
                   "time3": time_field(p["due_at"])}),
    "wish_fulfilled": Template(
        "WECHAT_TEMPLATE_WISH_FULFILLED", _wish_page,
        lambda p: {"thing1": thing(p["wish_title"]), "phrase2": phrase("已实现"),
                   "thing3": thing("感谢您的爱心，心愿已经实现")}),
    "donation_thanks": Template(
        "WECHAT_TEMPLATE_DONATION_THANKS", _donation_page,
        lambda p: {"thing1": thing(p.get("wish_title") or "505公益基金"),
                   "amount2": amount_field(p.get("amount_fen")),
                   "date3": time_field(p.get("paid_at")),
                   "thing4": thing("感谢爱心捐款，善款去向可在公开账本查询")}),
    "application_status": Template(
        "WECHAT_TEMPLATE_APPLICATION_STATUS",
        lambda p: f"pages/applications/detail?id={p.get('application_id', '')}",
        lambda p: {"thing1": thing("救助申请"), "phrase2": phrase(_APPLICATION_PHRASES.get(
                       p.get("status"), "办理中")),
                   "thing3": thing(p.get("hint") or "可在小程序中查看办理进度")}),
}

# What the applicant reads for each status of their application (phrase: 5 characters at most).
_APPLICATION_PHRASES = {"received": "已受理", "visiting": "核实中", "reviewing": "审核中",
                        "approved": "已批准", "refused": "未批准"}


def template_for(topic: str) -> Template | None:
    return TEMPLATES.get(topic)


def template_ids(config: Mapping[str, Any]) -> dict[str, str]:
    """topic -> configured template id, for the topics that have one."""
    return {topic: config.get(t.setting) for topic, t in TEMPLATES.items()
            if config.get(t.setting)}
