"""A wish's statuses, apart from its lifecycle (app.wishes.lifecycle), so that the model can name
them without importing the lifecycle and the feed cache it tells."""
from __future__ import annotations

from enum import StrEnum


class WishStatus(StrEnum):
    DRAFT = "draft"
    PENDING_REVIEW = "pending_review"
    OPEN = "open"
    REJECTED = "rejected"
    CLAIMED = "claimed"
    DELIVERED = "delivered"
    FULFILLED = "fulfilled"
    WITHDRAWN = "withdrawn"
