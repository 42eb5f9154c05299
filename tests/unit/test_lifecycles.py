"""Every lifecycle's table, move by move: each allowed move lands where the table says and writes
one audit row; each refused move is `invalid_transition` and changes nothing; creation is a move
from no status. And, over random sequences of actions, a claim and its wish stay in step."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.claims.lifecycle import CLAIM, IN_STEP, ClaimStatus, plan
from app.errors import InvalidTransition
from app.fund.lifecycle import DISBURSEMENT, DONATION
from app.lifecycle import Lifecycle, Transition, pending_audit
from app.wishes.lifecycle import WISH, WishStatus

LIFECYCLES = [WISH, CLAIM, DONATION, DISBURSEMENT]
AT = datetime(2026, 12, 7, 10, 0, tzinfo=timezone.utc)


@dataclass
class Thing:
    """Anything with a status and an id: what a lifecycle moves."""

    status: str | None = None
    id: str | None = "obj_1"


@dataclass
class Session:
    """The far end: a stand-in for the database session that keeps what was added."""

    added: list = field(default_factory=list)
    flushes: int = 0
    info: dict = field(default_factory=dict)

    def add(self, obj) -> None:
        self.added.append(obj)

    def flush(self) -> None:
        self.flushes += 1


def _every(lifecycle: Lifecycle):
    sources = [None, *lifecycle.statuses]
    return [(lc, source, action) for lc in [lifecycle] for source in sources
            for action in sorted(lifecycle.actions)]


ALLOWED = [(lc, src, act) for lc in LIFECYCLES for (src, act) in lc.moves]
REFUSED = [(lc, src, act) for lc in LIFECYCLES for (_, src, act) in _every(lc)
           if (src, act) not in lc.moves]


def _id(value) -> str:
    return getattr(value, "name", None) or str(value)


@pytest.mark.parametrize("lifecycle, source, action", ALLOWED, ids=_id)
def test_an_allowed_move_lands_where_the_table_says_and_is_audited(lifecycle, source, action):
    thing, session = Thing(status=source), Session()

    moved = lifecycle.move(thing, action, "usr_1", "why", at=AT, session=session)

    target = lifecycle.moves[(source, action)]
    assert thing.status == target and type(thing.status) is str  # stored as a plain string
    audit = pending_audit(session)  # written by the transaction's next flush or its commit
    assert len(audit) == 1 and not [row for row in session.added if isinstance(row, Transition)]
    row = audit[0]
    assert (row["entity_type"], row["entity_id"], row["from_status"], row["to_status"],
            row["action"], row["actor_id"], row["reason"], row["at"]) == (
        lifecycle.name, "obj_1", source, target, action, "usr_1", "why", AT)
    assert (moved.source, moved.target, moved.action, moved.created) == (
        source, target, action, source is None)


@pytest.mark.parametrize("lifecycle, source, action", REFUSED, ids=_id)
def test_a_refused_move_is_invalid_transition_and_changes_nothing(lifecycle, source, action):
    thing, session = Thing(status=source), Session()

    with pytest.raises(InvalidTransition) as refused:
        lifecycle.move(thing, action, "usr_1", at=AT, session=session)

    assert thing.status == source and session.added == [] and session.flushes == 0
    assert pending_audit(session) == []
    error = refused.value
    assert error.code == "invalid_transition"
    assert error.extra == {"current_status": source, "action": action}
    assert error.detail and lifecycle.labels.get(action, action) in error.detail


@pytest.mark.parametrize("lifecycle", LIFECYCLES, ids=_id)
def test_creation_is_the_one_move_from_no_status(lifecycle):
    creations = [(src, act) for (src, act) in lifecycle.moves if src is None]
    assert len(creations) == 1
    thing, session = Thing(status=None, id=None), Session()
    # a new object gets its id from the database: the move adds it and flushes first
    session.flush = lambda: setattr(thing, "id", "obj_new")

    lifecycle.move(thing, creations[0][1], None, at=AT, session=session)

    assert session.added == [thing] and pending_audit(session)[0]["entity_id"] == "obj_new"
    assert lifecycle.allowed_actions(None) == [creations[0][1]]


@pytest.mark.parametrize("lifecycle", LIFECYCLES, ids=_id)
def test_every_status_is_reachable_from_creation(lifecycle):
    reached, frontier = set(), [None]
    while frontier:
        source = frontier.pop()
        for (src, _), dst in lifecycle.moves.items():
            if src == source and dst not in reached:
                reached.add(dst)
                frontier.append(dst)
    assert reached == set(lifecycle.statuses)


def test_a_table_naming_an_unknown_status_is_refused_when_it_is_made():
    with pytest.raises(ValueError, match="unknown status"):
        Lifecycle("thing", WishStatus, {(None, "make"): "nowhere"})


def test_every_claim_action_names_a_wish_action_the_wish_table_knows():
    assert set(IN_STEP) == CLAIM.actions
    assert set(IN_STEP.values()) <= WISH.actions


# --- a claim and its wish, over random sequences of actions -----------------------------------

WISH_ONLY = ["submit", "approve", "reject", "withdraw"]
CLAIM_ACTIONS = sorted(IN_STEP)


@dataclass
class World:
    wish: str = WishStatus.DRAFT
    claims: list[str] = field(default_factory=list)  # every claim made on the wish, in order

    @property
    def holding(self) -> str | None:
        """The status of the claim that holds the wish, if one does."""
        return self.claims[-1] if self.claims and self.claims[-1] in ("active", "delivered") \
            else None


def _act(world: World, action: str) -> bool:
    """One action through the real rules; False if they refuse it (and nothing changed)."""
    before = (world.wish, list(world.claims))
    try:
        if action in WISH_ONLY:
            world.wish = WISH.step(world.wish, action)
        elif action == "claim":
            if world.holding is not None:
                raise InvalidTransition()  # the partial unique index: one holding claim per wish
            claim_target, _, wish_target = plan(None, world.wish, "claim")
            world.claims.append(claim_target)
            world.wish = wish_target
        else:
            current = world.claims[-1] if world.claims else None
            if current is None:
                raise InvalidTransition()
            claim_target, _, wish_target = plan(current, world.wish, action)
            world.claims[-1] = claim_target
            world.wish = wish_target
    except InvalidTransition:
        assert (world.wish, world.claims) == before
        return False
    return True


@settings(max_examples=150, deadline=None, derandomize=True)
@given(st.lists(st.sampled_from(WISH_ONLY + CLAIM_ACTIONS), max_size=40))
def test_a_claim_and_its_wish_stay_in_step(actions):
    world = World()
    for action in actions:
        _act(world, action)
        holding = world.holding
        # the wish is claimed exactly while a claim is active, delivered while it is delivered
        assert (world.wish == "claimed") == (holding == ClaimStatus.ACTIVE)
        assert (world.wish == "delivered") == (holding == ClaimStatus.DELIVERED)
        # at most one claim holds the wish: every earlier claim has ended
        assert all(c in ("released", "expired", "confirmed") for c in world.claims[:-1])
        # a fulfilled wish is the one whose last claim was confirmed, and it moves no more
        assert (world.wish == "fulfilled") == (world.claims[-1:] == ["confirmed"])
        assert not world.claims or world.wish not in ("draft", "pending_review", "rejected")


def test_the_happy_path_of_a_wish_through_a_claim():
    world = World()
    for action in ["submit", "approve", "claim", "deliver", "dispute", "deliver", "confirm"]:
        assert _act(world, action), action
    assert world.wish == "fulfilled" and world.claims == ["confirmed"]
    assert not _act(world, "withdraw") and not _act(world, "claim")
