"""Job entry points: thin, take IDs, safe to run twice. The app context is pushed by the worker."""
from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def expire_claim(claim_id: str) -> bool:
    """The doorbell at a claim's deadline. The sweeper expires it anyway if this never runs."""
    from app.claims.service import expire_claim as expire

    return expire(claim_id)


def send_reminders() -> int:
    from app.claims.service import send_due_reminders

    return send_due_reminders()


def process_proof(proof_id: str) -> str:
    from app.claims.proofs import process_proof as process

    return process(proof_id)


def sweep() -> dict:
    """Periodic (every SLA_CHECK_SECONDS): expire due claims, queue due reminders, and ring again
    for anything whose doorbell was lost (proofs waiting for processing)."""
    from app.claims.proofs import requeue_stuck
    from app.claims.service import send_due_reminders, sweep_due_claims

    expired = sweep_due_claims()
    reminded = send_due_reminders()
    requeued = requeue_stuck()
    if expired or reminded or requeued:
        log.info("sweep: %d claims expired, %d reminders queued, %d proofs requeued",
                 expired, reminded, requeued)
    return {"expired": expired, "reminded": reminded, "requeued": requeued}


def relay_outbox() -> dict:
    """The doorbell rung after a notification is written, and the periodic safety net
    (every NOTIFY_RELAY_SECONDS) for doorbells that were lost: send whatever is due."""
    from app.notifications.relay import relay_outbox as relay

    return relay()


def purge_idempotency_keys() -> int:
    """Periodic: forget idempotency records past their retention (at least 24 h, see app.idempotency)."""
    from app.idempotency import purge_expired

    removed = purge_expired()
    if removed:
        log.info("purged %d expired idempotency records", removed)
    return removed


def sign_checkpoint() -> int:
    """Rung after every commit that appended ledger entries, and periodically: sign and publish
    a checkpoint of the current tree (nothing if the last one already covers it)."""
    from app.ledger import log as ledger_log
    from app.ledger import note

    body, _ = note.split_note(ledger_log.checkpoint())
    return note.parse_checkpoint(body)[1]


def reconcile_donations() -> dict:
    """Periodic (every FUND_RECONCILE_SECONDS): ask WeChat Pay about donations still pending
    after a few minutes; settle the paid ones (a lost notification), close the expired ones."""
    from app.fund.reconcile import reconcile_pending

    return reconcile_pending()


def escalate_overdue_tasks() -> int:
    """Periodic (every CASES_ESCALATION_SECONDS): open visit and verify tasks past their due
    time tell the town's caseworkers and the moderators once, in the staff inbox."""
    from app.cases.tasks import escalate_overdue

    return escalate_overdue()
