"""The fund's error codes, with their Chinese titles (clients branch on `code`)."""
from __future__ import annotations

from app.errors import AppError

TITLES = {
    "insufficient_funds": "基金余额不足",
    "second_approver_required": "须由另一位审核员批准",
    "payment_mismatch": "支付通知与订单不符",
    "donation_closed": "捐款订单已关闭",
    "already_reversed": "该账目已被冲正",
    "cannot_reverse_reversal": "冲正账目不能再被冲正",
    "wish_not_open": "心愿当前不可捐助",
}


def fund_error(code: str, status: int, detail: str | None = None, **kwargs) -> AppError:
    return AppError(code, status, detail, title=TITLES.get(code), **kwargs)


def insufficient(balance: int, amount: int) -> AppError:
    return fund_error("insufficient_funds", 409,
                      f"基金当前余额 {balance / 100:.2f} 元，不足以支出 {amount / 100:.2f} 元",
                      extra={"balance_fen": balance, "amount_fen": amount})
