"""The outbox relay: send each pending WeChat subscribe message once, retrying what may succeed.

A message is taken with `FOR UPDATE SKIP LOCKED` and its row stays locked until its outcome is
committed, so any number of relays (the doorbell job, the periodic safety net, a second worker)
can run at once and none sends a message another is sending or has sent. Each message commits on
its own: one failure never undoes another's outcome.

Outcomes: `sent`; `refused` (WeChat 43101: the donor's consent is used up, so retrying is
pointless); `no_credit` (we know of no consent, so WeChat is not called); `failed` (a permanent
reason, or still failing after NOTIFY_MAX_ATTEMPTS). Anything else is retried with exponential
backoff and jitter. `last_error` says why, without any secret, token or openid.
"""
from __future__ import annotations

import logging
import random
from collections import Counter
from datetime import datetime, timedelta

from sqlalchemy import select

from app import wechat
from app.auth.models import User
from app.extensions import db
from app.notifications import credits
from app.notifications.models import OutboxMessage
from app.notifications.templates import template_for
from app.settings import settings
from app.types import utcnow
from app.uow import lock, unit_of_work

log = logging.getLogger(__name__)

ERROR_MAX = 300  # the width of outbox.last_error


def relay_outbox(batch: int = 50, now: datetime | None = None) -> dict[str, int]:
    """Send up to `batch` due messages; return how many ended in each state."""
    counts: Counter[str] = Counter()
    for _ in range(batch):
        status = _relay_next(now or utcnow())
        if status is None:
            break
        counts[status] += 1
    if counts:
        log.info("outbox relay: %s", ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
    return dict(counts)


def _take_next(now: datetime, message_id: int | None = None) -> OutboxMessage | None:
    query = (select(OutboxMessage)
             .where(OutboxMessage.status == "pending", OutboxMessage.next_attempt_at <= now)
             .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id).limit(1)
             .with_for_update(skip_locked=True))
    if message_id is not None:
        query = query.where(OutboxMessage.id == message_id)
    return lock("outbox", query).scalar_one_or_none()


def _relay_next(now: datetime) -> str | None:
    message_id = error = None
    try:
        with unit_of_work():
            message = _take_next(now)
            if message is None:
                return None
            message_id = message.id
            _deliver(message, now)
            return message.status
    except Exception as exc:  # a bug or an outage must not stall the messages behind this one
        if message_id is None:
            raise
        log.exception("outbox message %s could not be relayed", message_id)
        error = f"internal: {type(exc).__name__}"
    with unit_of_work():
        message = _take_next(now, message_id)
        if message is None:
            return "pending"
        _retry_later(message, now, error)
        return message.status


def _deliver(message: OutboxMessage, now: datetime) -> None:
    config = settings()
    template = template_for(message.topic)
    if template is None:
        return _finish(message, "failed", f"unknown topic {message.topic!r}")
    template_id = config.get(template.setting)
    if not template_id:
        return _finish(message, "failed", f"template not configured: {template.setting} is empty")
    if not config.get("WECHAT_APP_ID") or not config.get("WECHAT_APP_SECRET"):
        return _finish(message, "failed",
                       "wechat not configured: WECHAT_APP_ID / WECHAT_APP_SECRET")
    donor = db.session.get(User, message.user_id)
    if donor is None or not donor.active or not donor.wechat_openid:
        return _finish(message, "failed", "recipient is not an active WeChat user")
    if credits.lock_credits(donor.id, template_id) <= 0:
        return _finish(message, "no_credit", "no subscription consent left for this template")

    result = wechat.send_subscribe_message(donor.wechat_openid, template_id,
                                           template.build(message.payload),
                                           template.page(message.payload))
    message.attempts += 1
    if result.outcome == "sent":
        credits.spend_credit(donor.id, template_id)
        message.sent_at = now
        return _finish(message, "sent", None)
    if result.outcome == "refused":
        credits.clear_credits(donor.id, template_id)
        return _finish(message, "refused", result.detail)
    return _retry_later(message, now, result.detail, counted=True)


def _finish(message: OutboxMessage, status: str, error: str | None) -> None:
    message.status = status
    message.last_error = error[:ERROR_MAX] if error else None
    if status != "sent":
        log.info("outbox message %s (%s): %s — %s", message.id, message.topic, status, error)


def backoff_seconds(attempts: int, delays: list[int]) -> float:
    """The wait after the `attempts`-th failure: the configured step (the last one repeats),
    plus up to a quarter more at random so that retries after an outage do not arrive together."""
    base = delays[min(attempts, len(delays)) - 1] if delays else 60
    return base * (1 + random.uniform(0, 0.25))


def _retry_later(message: OutboxMessage, now: datetime, error: str,
                 counted: bool = False) -> None:
    if not counted:
        message.attempts += 1
    config = settings()
    if message.attempts >= config["NOTIFY_MAX_ATTEMPTS"]:
        return _finish(message, "failed", f"gave up after {message.attempts} attempts: {error}")
    delay = backoff_seconds(message.attempts, config["NOTIFY_RETRY_DELAYS"])
    message.next_attempt_at = now + timedelta(seconds=delay)
    message.last_error = error[:ERROR_MAX]
    log.info("outbox message %s (%s) will be retried in %ds: %s", message.id, message.topic,
             delay, error)
