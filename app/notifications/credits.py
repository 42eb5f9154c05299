"""Subscribe-message credits: what each donor has allowed us to send, per template.

The mini-program asks with wx.requestSubscribeMessage and reports what the donor accepted; each
accept is worth one message (WeChat answers 43101 once it is used). The relay spends a credit per
message sent and sends nothing without one, so a donor who never agreed is never called at all.
"""
from __future__ import annotations

from typing import Iterable

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite

from app.auth.models import User
from app.errors import ValidationFailed
from app.extensions import db
from app.notifications.models import SubscriptionCredit
from app.notifications.templates import template_ids
from app.settings import settings
from app.types import utcnow
from app.uow import lock, use_case


def _upsert_one(user_id: str, template_id: str) -> None:
    """credits += 1, creating the row on first consent; atomic under concurrent reports."""
    dialect = postgresql if db.session.get_bind().dialect.name == "postgresql" else sqlite
    now = utcnow()
    stmt = dialect.insert(SubscriptionCredit).values(
        user_id=user_id, template_id=template_id, credits=1, updated_at=now)
    stmt = stmt.on_conflict_do_update(
        index_elements=["user_id", "template_id"],
        set_={"credits": SubscriptionCredit.credits + 1, "updated_at": now})
    db.session.execute(stmt)


@use_case
def record_consent(user: User, requested: Iterable[str], accepted: Iterable[str]) -> dict:
    """Add one credit per accepted template that one of our topics uses; return the balances.

    Templates we do not (or no longer) use are ignored rather than refused, so an older
    mini-program build that still asks for a retired template keeps working.
    """
    requested, accepted = set(requested), set(accepted)
    if not accepted <= requested:
        raise ValidationFailed(detail="accepted 中的模板必须在 template_ids 中",
                               errors={"accepted": ["只能包含本次请求过的模板"]})
    ours = set(template_ids(settings()).values())
    for template_id in sorted(accepted & ours):  # a fixed order: no deadlock between two reports
        _upsert_one(user.id, template_id)
    return balances(user)


def balances(user: User) -> dict:
    """Each topic with its template id and how many messages the donor may still receive."""
    ids = template_ids(settings())
    rows = dict(db.session.execute(
        select(SubscriptionCredit.template_id, SubscriptionCredit.credits)
        .where(SubscriptionCredit.user_id == user.id,
               SubscriptionCredit.template_id.in_(list(ids.values())))).all())
    return {"items": [{"topic": topic, "template_id": tid, "credits": rows.get(tid, 0)}
                      for topic, tid in ids.items()]}


# --- used by the relay, inside its per-message transaction -------------------------------------

def lock_credits(user_id: str, template_id: str) -> int:
    """The donor's credits for a template, locked until the relay's unit of work ends, so two
    relays sending to the same donor cannot both spend the last one."""
    value = lock("credit", select(SubscriptionCredit.credits)
                 .where(SubscriptionCredit.user_id == user_id,
                        SubscriptionCredit.template_id == template_id)
                 .with_for_update()).scalar_one_or_none()
    return value or 0


def spend_credit(user_id: str, template_id: str) -> None:
    db.session.execute(
        update(SubscriptionCredit)
        .where(SubscriptionCredit.user_id == user_id,
               SubscriptionCredit.template_id == template_id, SubscriptionCredit.credits > 0)
        .values(credits=SubscriptionCredit.credits - 1, updated_at=utcnow()))


def clear_credits(user_id: str, template_id: str) -> None:
    """WeChat says none are left (43101): believe it over our count."""
    db.session.execute(
        update(SubscriptionCredit)
        .where(SubscriptionCredit.user_id == user_id,
               SubscriptionCredit.template_id == template_id)
        .values(credits=0, updated_at=utcnow()))
