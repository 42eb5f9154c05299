"""The books' rules (app.fund.rules): double entry, balances, and money out only if it is there."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.errors import Conflict
from app.fund import rules
from app.fund.rules import ACCOUNTS, DISBURSEMENTS_PAID, DONATIONS_RECEIVED, FUND_CASH


@pytest.mark.parametrize("postings", [
    rules.donation(100), rules.disbursement(100), rules.reversal(rules.donation(100)),
    rules.reversal(rules.disbursement(1)),
], ids=["donation", "disbursement", "donation reversed", "disbursement reversed"])
def test_every_event_posts_a_balanced_transaction(postings):
    rules.check(postings)  # does not raise
    assert sum(amount for _, amount in postings) == 0


@pytest.mark.parametrize("postings", [
    [], [(FUND_CASH, 100)], [(FUND_CASH, 100), (DONATIONS_RECEIVED, -99)],
    [(FUND_CASH, 100), ("petty_cash", -100)], [(FUND_CASH, 0), (DONATIONS_RECEIVED, 0)],
], ids=["empty", "one leg", "unbalanced", "unknown account", "zero amounts"])
def test_a_transaction_that_breaks_double_entry_is_refused(postings):
    with pytest.raises(ValueError):
        rules.check(postings)


def test_a_donation_brings_cash_in_and_a_disbursement_takes_it_out():
    assert rules.cash_change(rules.donation(500)) == 500
    assert rules.cash_change(rules.disbursement(200)) == -200
    assert rules.balances([rules.donation(500), rules.disbursement(200)]) == {
        FUND_CASH: 300, DONATIONS_RECEIVED: -500, DISBURSEMENTS_PAID: 200}


def test_money_leaves_only_if_the_fund_holds_it():
    rules.check_take_out(300, 300)
    with pytest.raises(Conflict) as refused:
        rules.check_take_out(300, 301)
    assert refused.value.code == "insufficient_funds"
    assert refused.value.extra == {"balance_fen": 300, "amount_fen": 301}


events = st.lists(st.tuples(st.sampled_from(["donate", "disburse", "reverse"]),
                            st.integers(min_value=1, max_value=10**9)), max_size=40)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(events)
def test_any_sequence_of_events_keeps_the_books_balanced_and_the_cash_not_negative(steps):
    posted: list[list[tuple[str, int]]] = []
    reversed_ = set()
    for kind, value in steps:
        cash = rules.balances(posted)[FUND_CASH]
        if kind == "donate":
            postings = rules.donation(value)
        elif kind == "disburse":
            try:
                rules.check_take_out(cash, value)
            except Conflict:
                continue
            postings = rules.disbursement(value)
        else:
            candidates = [i for i in range(len(posted)) if i not in reversed_]
            if not candidates:
                continue
            target = candidates[value % len(candidates)]
            postings = rules.reversal(posted[target])
            if -rules.cash_change(postings) > 0:
                try:
                    rules.check_take_out(cash, -rules.cash_change(postings))
                except Conflict:
                    continue
            reversed_.add(target)
        rules.check(postings)
        posted.append(postings)
        totals = rules.balances(posted)
        assert sum(totals.values()) == 0  # double entry: the whole books sum to zero
        assert totals[FUND_CASH] >= 0
        assert totals[FUND_CASH] == -totals[DONATIONS_RECEIVED] - totals[DISBURSEMENTS_PAID]
        assert set(totals) == set(ACCOUNTS)
