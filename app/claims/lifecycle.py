"""The claim lifecycle as data, moved in step with its wish.

Every claim move names the wish move that goes with it; both are checked before either changes,
and both write audit rows in the caller's transaction.
"""
from __future__ import annotations

from app.claims.models import Claim, ClaimTransition
from app.errors import AppError
from app.extensions import db
from app.types import utcnow
from app.wishes.lifecycle import TRANSITIONS as WISH_TRANSITIONS
from app.wishes.lifecycle import transition as wish_transition

# (claim status, action) -> (claim status after, the wish action that goes with it)
TRANSITIONS: dict[tuple[str, str], tuple[str, str]] = {
    ("active", "release"): ("released", "release"),
    ("active", "expire"): ("expired", "expire"),
    ("active", "deliver"): ("delivered", "deliver"),
    ("delivered", "confirm"): ("confirmed", "fulfil"),
    ("delivered", "dispute"): ("active", "dispute"),
}
ENDING = {"released", "expired", "confirmed"}

LABELS = {"release": "放弃认领", "expire": "超时", "deliver": "提交送达凭证",
          "confirm": "确认完成", "dispute": "对送达提出异议"}


def move(claim: Claim, action: str, actor_id: str | None, reason: str | None = None) -> str:
    """Move a claim and its wish together; 409 `invalid_transition` and no change otherwise."""
    step = TRANSITIONS.get((claim.status, action))
    wish = claim.wish
    if step is None or (wish.status, step[1]) not in WISH_TRANSITIONS:
        raise AppError("invalid_transition", 409,
                       f"认领当前状态为 {claim.status}，不能{LABELS.get(action, action)}",
                       extra={"current_status": claim.status, "action": action})
    target, wish_action = step
    source = claim.status
    now = utcnow()
    wish_transition(wish, wish_action, actor_id, reason)
    claim.status = target
    if target == "delivered":
        claim.delivered_at = now
    if target in ENDING:
        claim.ended_at = now
    wish.due_at = claim.due_at if target == "active" else None
    db.session.add(ClaimTransition(claim_id=claim.id, from_status=source, to_status=target,
                                   action=action, actor_id=actor_id, reason=reason, at=now))
    return target
