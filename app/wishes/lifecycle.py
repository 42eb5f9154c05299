"""The wish lifecycle as data (an `app.lifecycle.Lifecycle`) and the one function moving a wish.

Every move is checked against the table, writes an audit row and tells the feed cache. Any move
not in the table is 409 `invalid_transition` and changes nothing.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from app.extensions import db
from app.lifecycle import Lifecycle, Moved
from app.wishes import feed_cache
from app.wishes.status import WishStatus

if TYPE_CHECKING:
    from app.wishes.models import Wish


W = WishStatus
WISH = Lifecycle(
    name="wish",
    statuses=WishStatus,
    moves={
        (None, "create"): W.DRAFT,
        (W.DRAFT, "submit"): W.PENDING_REVIEW,
        (W.REJECTED, "submit"): W.PENDING_REVIEW,
        (W.PENDING_REVIEW, "approve"): W.OPEN,
        (W.PENDING_REVIEW, "reject"): W.REJECTED,
        (W.OPEN, "withdraw"): W.WITHDRAWN,
        (W.OPEN, "claim"): W.CLAIMED,
        (W.CLAIMED, "release"): W.OPEN,
        (W.CLAIMED, "expire"): W.OPEN,
        (W.CLAIMED, "deliver"): W.DELIVERED,
        (W.DELIVERED, "dispute"): W.CLAIMED,
        (W.DELIVERED, "fulfil"): W.FULFILLED,
    },
    labels={"create": "创建", "submit": "提交审核", "approve": "审核通过", "reject": "审核驳回",
            "withdraw": "撤回", "claim": "认领", "release": "放弃认领", "expire": "认领超时",
            "deliver": "已送达", "dispute": "送达存疑", "fulfil": "已完成"},
    refusal="心愿当前状态为 {status}，不能执行「{label}」",
)

# Kept for readers of the table as it was: (from status, action) -> to status, without creation.
TRANSITIONS: dict[tuple[str, str], str] = {
    (str(src), action): str(dst) for (src, action), dst in WISH.moves.items() if src is not None}
ACTION_LABELS = dict(WISH.labels)


def allowed_actions(status: str) -> list[str]:
    return WISH.allowed_actions(status)


def transition(wish: Wish, action: str, actor_id: str | None, reason: str | None = None) -> str:
    """Move `wish` by `action` inside the caller's transaction; the caller commits."""
    moved = WISH.move(wish, action, actor_id, reason)
    apply_effects(wish, moved)
    return moved.target


def apply_effects(wish: Wish, moved: Moved) -> None:
    """What a wish move does besides its status: timestamps, and the feed cache's bell."""
    if moved.target == W.PENDING_REVIEW:
        wish.submitted_at = moved.at
    elif moved.target == W.OPEN and moved.source == W.PENDING_REVIEW:
        wish.published_at = moved.at
    elif moved.target == W.FULFILLED:
        wish.fulfilled_at = moved.at
    if W.OPEN in (moved.source, moved.target):
        feed_cache.invalidate(db.session)
