"""The wish lifecycle is data: one table of allowed moves, one function that makes them.

Every move is checked against the table, writes an audit row and tells the feed cache. Any move
not in the table is 409 `invalid_transition` and changes nothing.
"""
from __future__ import annotations

from app.errors import AppError
from app.extensions import db
from app.types import utcnow
from app.wishes import feed_cache
from app.wishes.models import Wish, WishTransition

# (from status, action) -> to status
TRANSITIONS: dict[tuple[str, str], str] = {
    ("draft", "submit"): "pending_review",
    ("rejected", "submit"): "pending_review",
    ("pending_review", "approve"): "open",
    ("pending_review", "reject"): "rejected",
    ("open", "withdraw"): "withdrawn",
    ("open", "claim"): "claimed",
    ("claimed", "release"): "open",
    ("claimed", "expire"): "open",
    ("claimed", "deliver"): "delivered",
    ("delivered", "dispute"): "claimed",
    ("delivered", "fulfil"): "fulfilled",
}

ACTION_LABELS = {"submit": "提交审核", "approve": "审核通过", "reject": "审核驳回",
                 "withdraw": "撤回", "claim": "认领", "release": "放弃认领", "expire": "认领超时",
                 "deliver": "已送达", "dispute": "送达存疑", "fulfil": "已完成"}


def allowed_actions(status: str) -> list[str]:
    return [action for (src, action) in TRANSITIONS if src == status]


def transition(wish: Wish, action: str, actor_id: str | None, reason: str | None = None) -> str:
    """Move `wish` by `action` inside the caller's transaction; the caller commits."""
    target = TRANSITIONS.get((wish.status, action))
    if target is None:
        raise AppError(
            "invalid_transition", 409,
            f"心愿当前状态为 {wish.status}，不能执行「{ACTION_LABELS.get(action, action)}」",
            extra={"current_status": wish.status, "action": action},
        )
    source = wish.status
    now = utcnow()
    wish.status = target
    if target == "pending_review":
        wish.submitted_at = now
    elif target == "open" and source == "pending_review":
        wish.published_at = now
    elif target == "fulfilled":
        wish.fulfilled_at = now
    db.session.add(WishTransition(wish_id=wish.id, from_status=source, to_status=target,
                                  action=action, actor_id=actor_id, reason=reason, at=now))
    if "open" in (source, target):
        feed_cache.invalidate(db.session)
    return target
