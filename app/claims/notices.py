"""What a claim's donor and the wish's caseworker are told, written in the claim's transaction.

Donors get WeChat subscribe messages through the outbox; caseworkers get inbox messages. Every
message has a dedupe key built from the business event, so it is sent once however often the
code that writes it runs.
"""
from __future__ import annotations

from app.claims.models import Claim
from app.notifications.service import notify_donor, notify_staff
from app.types import isoformat


def _payload(claim: Claim, **extra) -> dict:
    return {"claim_id": claim.id, "wish_id": claim.wish_id, "wish_title": claim.wish.title,
            "due_at": isoformat(claim.due_at), **extra}


def claimed(claim: Claim) -> None:
    notify_donor(claim.donor_id, "claim_created", _payload(claim),
                 f"claim-created:{claim.id}")


def reminder(claim: Claim, offset: int) -> int:
    notify_donor(claim.donor_id, "claim_reminder", _payload(claim, seconds_left=offset),
                 f"claim-reminder:{claim.id}:{offset}:{int(claim.due_at.timestamp())}")
    return 1


def expired(claim: Claim) -> None:
    notify_donor(claim.donor_id, "claim_expired", _payload(claim),
                 f"claim-expired:{claim.id}")
    notify_staff([claim.wish.author_id], "claim_expired", "认领超时",
                 f"心愿「{claim.wish.title}」的认领已超时，心愿已重新开放认领。",
                 {"claim_id": claim.id, "wish_id": claim.wish_id}, f"claim-expired:{claim.id}")


def disputed(claim: Claim, reason: str) -> None:
    notify_donor(claim.donor_id, "claim_disputed", _payload(claim, reason=reason),
                 f"claim-disputed:{claim.id}:{claim.dispute_count}")


def fulfilled(claim: Claim) -> None:
    notify_donor(claim.donor_id, "wish_fulfilled", _payload(claim),
                 f"wish-fulfilled:{claim.id}")


def proof_submitted(claim: Claim, proof_id: str, similar_to: list[str]) -> None:
    body = f"心愿「{claim.wish.title}」的认领人已提交送达凭证，请核实后确认。"
    if similar_to:
        body += "注意：这张照片与之前其他心愿的凭证照片高度相似，请仔细核实。"
    notify_staff([claim.wish.author_id], "proof_flagged" if similar_to else "proof_submitted",
                 "送达凭证待确认", body,
                 {"claim_id": claim.id, "wish_id": claim.wish_id, "proof_id": proof_id,
                  "similar_to": similar_to}, f"proof:{proof_id}")
