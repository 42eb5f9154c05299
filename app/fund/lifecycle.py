"""The fund's two lifecycles as data: donations and disbursements (`app.lifecycle.Lifecycle`)."""
from __future__ import annotations

from enum import StrEnum

from app.lifecycle import Lifecycle


class DonationStatus(StrEnum):
    PENDING_PAYMENT = "pending_payment"
    PAID = "paid"
    CLOSED = "closed"


class DisbursementStatus(StrEnum):
    PENDING_APPROVAL = "pending_approval"
    APPROVED = "approved"
    REJECTED = "rejected"


D = DonationStatus
DONATION = Lifecycle(
    name="donation",
    statuses=DonationStatus,
    moves={
        (None, "create"): D.PENDING_PAYMENT,
        (D.PENDING_PAYMENT, "pay"): D.PAID,
        (D.CLOSED, "pay"): D.PAID,  # the money arrived after the order closed: it counts
        (D.PENDING_PAYMENT, "close"): D.CLOSED,
    },
    labels={"create": "发起捐款", "pay": "支付", "close": "关闭"},
    refusal="捐款当前状态为 {status}，不能{label}",
)

P = DisbursementStatus
DISBURSEMENT = Lifecycle(
    name="disbursement",
    statuses=DisbursementStatus,
    moves={
        (None, "request"): P.PENDING_APPROVAL,
        (P.PENDING_APPROVAL, "approve"): P.APPROVED,
        (P.PENDING_APPROVAL, "reject"): P.REJECTED,
    },
    labels={"request": "申请", "approve": "批准", "reject": "驳回"},
    refusal="拨付申请当前状态为 {status}，不能{label}",
)
