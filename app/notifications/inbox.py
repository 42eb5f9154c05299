"""The staff inbox: list one's own notifications, newest first, and mark them read."""
from __future__ import annotations

from sqlalchemy import select

from app.auth.models import User
from app.errors import NotFound
from app.extensions import db
from app.notifications.models import InboxNotification
from app.pagination import Page, keyset_page
from app.types import utcnow
from app.uow import lock as lock_, use_case


def list_inbox(user: User, *, unread_only: bool, limit: int, cursor: str | None) -> Page:
    query = select(InboxNotification).where(InboxNotification.user_id == user.id)
    if unread_only:
        query = query.where(InboxNotification.read_at.is_(None))
    # The filter is part of the cursor's kind: a cursor from one list is refused by the other.
    return keyset_page(query, (InboxNotification.created_at, InboxNotification.id),
                       ("desc", "desc"), limit=limit, cursor=cursor,
                       cursor_kind="inbox-unread" if unread_only else "inbox")


def get_notification_for(user: User, notification_id: str, *,
                         lock: bool = False) -> InboxNotification:
    """The caller's own notification; anyone else's reads as one that does not exist."""
    query = select(InboxNotification).where(InboxNotification.id == notification_id,
                                            InboxNotification.user_id == user.id)
    if lock:
        notification = lock_("notification", query.with_for_update()).scalar_one_or_none()
    else:
        notification = db.session.execute(query).scalar_one_or_none()
    if notification is None:
        raise NotFound("未找到该通知")
    return notification


@use_case
def mark_read(user: User, notification_id: str) -> InboxNotification:
    """Mark read; reading it again keeps the first time it was read."""
    notification = get_notification_for(user, notification_id, lock=True)
    if notification.read_at is None:
        notification.read_at = utcnow()
    return notification
