"""A Hypothesis state machine over the wish lifecycle, driven through the HTTP API.

Rules try every action (submit, approve, reject, edit, withdraw) on any wish in whatever state it
is in; a model says what must happen. A legal move must succeed and an illegal one must be 409
`invalid_transition` with nothing changed. After every step: the public feed holds exactly the
wishes that are `open`, a wish's public card is visible exactly when it is published, and each
wish's audit trail replays, move by move, to its current state.

Tables are emptied per test function, not per example, so each example makes its own wishes and
treats whatever earlier examples left open as a fixed baseline that must not change.
"""
from __future__ import annotations

import itertools

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle, RuleBasedStateMachine, initialize, invariant, precondition, rule,
    run_state_machine_as_test,
)

from tests.factories import wish_payload

API = "/api/v1"
# The contract's moves for the actions exercised here: (state, action) -> new state.
MOVES = {
    ("draft", "submit"): "pending_review",
    ("rejected", "submit"): "pending_review",
    ("pending_review", "approve"): "open",
    ("pending_review", "reject"): "rejected",
    ("open", "withdraw"): "withdrawn",
}
EDITABLE = ("draft", "rejected")
PUBLISHED = ("open", "claimed", "delivered", "fulfilled")
MAX_WISHES = 3
_titles = itertools.count(1)


class WishLifecycle(RuleBasedStateMachine):
    """Set `client`, `caseworker`, `moderator` and `beneficiary_id` on a subclass."""

    client = caseworker = moderator = beneficiary_id = None
    wishes = Bundle("wishes")

    def __init__(self) -> None:
        super().__init__()
        self.status: dict[str, str] = {}
        self.title: dict[str, str] = {}
        self.baseline: set[str] = set()
        self.touched: set[str] = set()  # wishes acted on since the trails were last replayed

    # --- helpers -------------------------------------------------------------------------------

    def feed_ids(self) -> list[str]:
        ids, cursor = [], None
        while True:
            url = f"{API}/wishes?limit=100" + (f"&cursor={cursor}" if cursor else "")
            res = self.client.get(url)
            assert res.status_code == 200, res.get_json()
            body = res.get_json()
            ids += [w["id"] for w in body["items"]]
            cursor = body["next_cursor"]
            if cursor is None:
                return ids

    def staff_record(self, wish_id: str) -> dict:
        res = self.client.get(f"{API}/wishes/{wish_id}", headers=self.moderator.headers)
        assert res.status_code == 200, res.get_json()
        return res.get_json()

    def attempt(self, wish_id: str, action: str, actor, **body) -> None:
        self.touched.add(wish_id)
        before = self.status[wish_id]
        res = self.client.post(f"{API}/wishes/{wish_id}/{action}", headers=actor.headers,
                               json=body or None)
        expected = MOVES.get((before, action))
        if expected is None:
            assert res.status_code == 409, (before, action, res.get_json())
            assert res.get_json()["code"] == "invalid_transition"
            assert self.staff_record(wish_id)["status"] == before
        else:
            assert res.status_code == 200, (before, action, res.get_json())
            assert res.get_json()["status"] == expected
            self.status[wish_id] = expected

    # --- rules ---------------------------------------------------------------------------------

    @initialize()
    def remember_what_earlier_examples_left_open(self):
        self.baseline = set(self.feed_ids())

    @precondition(lambda self: len(self.status) < MAX_WISHES)
    @rule(target=wishes)
    def create(self):
        title = f"心愿{next(_titles)}"
        res = self.client.post(f"{API}/wishes", headers=self.caseworker.headers,
                               json=wish_payload(self.beneficiary_id, title=title))
        assert res.status_code == 201, res.get_json()
        wish = res.get_json()
        assert wish["status"] == "draft"
        self.status[wish["id"]] = "draft"
        self.title[wish["id"]] = title
        self.touched.add(wish["id"])
        return wish["id"]

    @rule(wish=wishes)
    def submit(self, wish):
        self.attempt(wish, "submit", self.caseworker)

    @rule(wish=wishes)
    def approve(self, wish):
        self.attempt(wish, "approve", self.moderator)

    @rule(wish=wishes)
    def reject(self, wish):
        self.attempt(wish, "reject", self.moderator, reason="资料不全，请补充")

    @rule(wish=wishes, by_moderator=st.booleans())
    def withdraw(self, wish, by_moderator):
        self.attempt(wish, "withdraw", self.moderator if by_moderator else self.caseworker)

    @rule(wish=wishes)
    def edit(self, wish):
        self.touched.add(wish)
        title = f"心愿{next(_titles)}"
        res = self.client.patch(f"{API}/wishes/{wish}", headers=self.caseworker.headers,
                                json={"title": title})
        if self.status[wish] in EDITABLE:
            assert res.status_code == 200, res.get_json()
            self.title[wish] = title
        else:
            assert res.status_code == 409, res.get_json()
            assert res.get_json()["code"] == "invalid_transition"
        record = self.staff_record(wish)
        assert (record["status"], record["title"]) == (self.status[wish], self.title[wish])

    # --- invariants ----------------------------------------------------------------------------

    @invariant()
    def feed_holds_exactly_the_open_wishes(self):
        ids = self.feed_ids()
        assert len(ids) == len(set(ids))
        mine_open = {w for w, s in self.status.items() if s == "open"}
        assert set(ids) == self.baseline | mine_open

    @invariant()
    def card_is_public_exactly_when_published(self):
        for wish, status in self.status.items():
            res = self.client.get(f"{API}/wishes/{wish}")
            if status in PUBLISHED:
                assert res.status_code == 200, (status, res.get_json())
                assert res.get_json()["status"] == status
                assert res.get_json()["title"] == self.title[wish]
            else:
                assert res.status_code == 404, (status, res.get_json())

    def replay_trail(self, wish: str) -> None:
        res = self.client.get(f"{API}/wishes/{wish}/transitions",
                              headers=self.caseworker.headers)
        assert res.status_code == 200
        trail = res.get_json()
        assert (trail[0]["from_status"], trail[0]["to_status"]) == (None, "draft")
        state = "draft"
        for step in trail[1:]:
            assert step["from_status"] == state
            assert MOVES[(state, step["action"])] == step["to_status"]
            assert step["actor_id"] in (self.caseworker.id, self.moderator.id)
            state = step["to_status"]
        assert state == self.status[wish]

    @invariant()
    def audit_trail_replays_to_the_current_state(self):
        # Only a wish acted on can have gained audit rows; every trail is replayed at teardown.
        for wish in sorted(self.touched):
            self.replay_trail(wish)
        self.touched.clear()

    def teardown(self):
        for wish in self.status:
            self.replay_trail(wish)


def test_wish_lifecycle_holds_its_invariants_under_any_sequence_of_moves(client, actors):
    caseworker, moderator = actors.caseworker(), actors.moderator()

    class Machine(WishLifecycle):
        pass

    Machine.client = client
    Machine.caseworker, Machine.moderator = caseworker, moderator
    Machine.beneficiary_id = actors.beneficiary(caseworker)["id"]
    run_state_machine_as_test(Machine, settings=settings(
        max_examples=25, stateful_step_count=15, deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]))
