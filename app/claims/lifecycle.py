"""The claim lifecycle as data (an `app.lifecycle.Lifecycle`), moved in step with its wish.

Every claim action names the wish action that goes with it (`IN_STEP`); both moves are checked
before either changes, and both write audit rows in the caller's transaction. A claim is created
by the `claim` move from no status, which claims its wish.
"""
from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from app.lifecycle import Lifecycle, Moved
from app.wishes.lifecycle import WISH, WishStatus
from app.wishes.lifecycle import transition as wish_transition

if TYPE_CHECKING:
    from app.claims.models import Claim
    from app.wishes.models import Wish


class ClaimStatus(StrEnum):
    ACTIVE = "active"
    RELEASED = "released"
    EXPIRED = "expired"
    DELIVERED = "delivered"
    CONFIRMED = "confirmed"


C = ClaimStatus
CLAIM = Lifecycle(
    name="claim",
    statuses=ClaimStatus,
    moves={
        (None, "claim"): C.ACTIVE,
        (C.ACTIVE, "release"): C.RELEASED,
        (C.ACTIVE, "expire"): C.EXPIRED,
        (C.ACTIVE, "deliver"): C.DELIVERED,
        (C.DELIVERED, "confirm"): C.CONFIRMED,
        (C.DELIVERED, "dispute"): C.ACTIVE,
    },
    labels={"claim": "认领", "release": "放弃认领", "expire": "超时", "deliver": "提交送达凭证",
            "confirm": "确认完成", "dispute": "对送达提出异议"},
    refusal="认领当前状态为 {status}，不能{label}",
)
# claim action -> the wish action that goes with it
IN_STEP: dict[str, str] = {"claim": "claim", "release": "release", "expire": "expire",
                           "deliver": "deliver", "confirm": "fulfil", "dispute": "dispute"}
ENDING = {C.RELEASED, C.EXPIRED, C.CONFIRMED}


def plan(claim_status: str | None, wish_status: str,
         action: str) -> tuple[ClaimStatus, str, WishStatus]:
    """The pure rule of a move in step: the claim's status after `action`, the wish action that
    goes with it and the wish's status after that, or `invalid_transition` if either lifecycle
    refuses (then nothing changes)."""
    target = CLAIM.target(claim_status, action)
    wish_action = IN_STEP.get(action)
    wish_target = WISH.target(wish_status, wish_action) if wish_action else None
    if target is None or wish_target is None:
        raise CLAIM.refuse(claim_status, action)
    return target, wish_action, wish_target


def move(claim: Claim, action: str, actor_id: str | None, reason: str | None = None, *,
         at: datetime | None = None) -> str:
    """Move a claim and its wish together; 409 `invalid_transition` and no change otherwise.
    A new claim (no status yet, its wish set) is created by the `claim` move."""
    wish = claim.wish
    _, wish_action, _ = plan(claim.status, wish.status, action)  # both checked, nothing changed
    wish_transition(wish, wish_action, actor_id, reason)
    moved = CLAIM.move(claim, action, actor_id, reason, at=at)
    apply_effects(claim, wish, moved)
    return moved.target


def apply_effects(claim: Claim, wish: Wish, moved: Moved) -> None:
    """What a claim move does besides its status: timestamps, and the wish's deadline."""
    if moved.target == C.DELIVERED:
        claim.delivered_at = moved.at
    if moved.target in ENDING:
        claim.ended_at = moved.at
    wish.due_at = claim.due_at if moved.target == C.ACTIVE else None
