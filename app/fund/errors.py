"""The fund's errors that carry numbers (their titles are in miniprogram_api.problems)."""
from __future__ import annotations

from app.errors import Conflict, DomainError

def insufficient(balance: int, amount: int) -> DomainError:
    return Conflict("insufficient_funds",
                    f"基金当前余额 {balance / 100:.2f} 元，不足以支出 {amount / 100:.2f} 元",
                    extra={"balance_fen": balance, "amount_fen": amount})
