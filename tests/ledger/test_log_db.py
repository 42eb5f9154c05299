"""The ledger on the real database: dense appends, stored nodes, proofs, checkpoints, and a
database that refuses to rewrite history."""
from __future__ import annotations

import random
from datetime import datetime, timezone

import pytest
import sqlalchemy as sa
from sqlalchemy import func, select

from app.errors import DomainError

from miniprogram_api.problems import status_of
from app.extensions import db
from app.ledger import entries, log, merkle, note
from app.ledger.models import LedgerCheckpoint, LedgerEntry, LedgerNode

AT = datetime(2026, 11, 25, 8, 30, 15, 123456, tzinfo=timezone.utc)


def _entry(n: int) -> dict:
    return entries.entry("in_kind_fulfilment", wish_id=f"wsh_{n}", town="350505101",
                         item="书包", value_fen=100 + n, at=AT)


def _append(n: int, source: str | None = None) -> int:
    return log.append("in_kind_fulfilment", _entry(n), "test", source or f"src-{n}")


def _get_node(level: int, index: int) -> bytes:
    row = db.session.get(LedgerNode, (level, index))
    if row is None:
        raise LookupError((level, index))
    return bytes(row.hash)


def test_canonical_json_is_sorted_compact_utf8_and_the_time_is_rfc3339_z():
    data = entries.canonical(_entry(1))
    assert data.decode("utf-8") == (
        '{"at":"2026-11-25T08:30:15Z","donor":"爱心人士","item":"书包",'
        '"kind":"in_kind_fulfilment","town":"350505101","value_fen":101,"wish_id":"wsh_1"}')


def test_reversal_names_the_index_and_leaf_hash_it_reverses():
    rev = entries.reversal(7, b"\xab" * 32, wish_id="wsh_1", town="350505101", item="书包",
                           value_fen=101, at=AT)
    assert rev["kind"] == "reversal" and rev["reverses_index"] == 7
    assert rev["reverses_leaf_hash"] == "ab" * 32


def test_two_hundred_appends_give_dense_indices_and_every_proof_verifies(app):
    rng = random.Random(6962)
    reference = merkle.MemoryTree()
    with app.app_context():
        for n in range(200):
            assert _append(n) == n
            reference.append(entries.canonical(_entry(n)))
        db.session.commit()
        assert log.size() == 200
        assert [r.index for r in log.entries(0, 1000)] == list(range(200))
        sizes = sorted({1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 63, 64, 65, 127, 128, 129, 199, 200,
                        *rng.sample(range(1, 201), 12)})
        roots = {s: merkle.root_from_nodes(s, _get_node) for s in sizes}
        for s in sizes:
            assert roots[s] == reference.root(s) == log.root(s)
            for index in range(s):
                leaf = merkle.leaf_hash(entries.canonical(_entry(index)))
                merkle.check_inclusion(leaf, index, s, log.inclusion(index, s), roots[s])
        for first in sizes:
            for second in sizes:
                if first <= second:
                    merkle.check_consistency(first, second, roots[first], roots[second],
                                             log.consistency(first, second))


def test_proofs_read_their_few_nodes_in_one_query(app):
    statements = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    with app.app_context():
        for n in range(130):
            _append(n)
        db.session.commit()
        # leaves, plus n - popcount(n) completed perfect subtrees above them
        assert db.session.execute(select(func.count()).select_from(LedgerNode)).scalar_one() \
            == 130 + 128
        sa.event.listen(db.engine, "before_cursor_execute", count)
        try:
            inclusion = log.inclusion(5, 130)
            node_reads = [s for s in statements if "ledger_nodes" in s]
            consistency = log.consistency(3, 130)
        finally:
            sa.event.remove(db.engine, "before_cursor_execute", count)
        # size + nodes for the first proof; the second needs no size query (the log only
        # grows, and 130 entries are known committed) and reads only the nodes not cached
        assert len(node_reads) == 1 and len(statements) == 3
        assert len(inclusion) == 8 and len(consistency) <= 9


def test_a_proof_never_serves_cached_nodes_of_an_append_that_rolled_back(app):
    with app.app_context():
        for n in range(4):
            _append(n)
        db.session.commit()
        # A transaction appends, reads a proof over its own uncommitted nodes, rolls back.
        for n in range(4, 8):
            _append(n)
        log.inclusion(5, 8)
        db.session.rollback()
        # Other entries take those indices: proofs must be over these, not the rolled back.
        for n in range(100, 104):
            _append(n)
        db.session.commit()
        root = log.root(8)
        for index in range(8):
            leaf = merkle.leaf_hash(entries.canonical(_entry(index if index < 4 else 96 + index)))
            merkle.check_inclusion(leaf, index, 8, log.inclusion(index, 8), root)


def test_concurrent_appends_take_turns_and_every_index_and_node_is_right(app, needs_postgres):
    """Eight writers, released together, each append 16 entries (one transaction each) and one
    business event twice: the advisory lock makes them take turns, so the indices are dense, the
    event has one entry and the stored tree is the reference tree of what was committed."""
    from tests.concurrency import run_together

    def writer(w: int):
        def run() -> list[int]:
            with app.app_context():
                got = []
                for k in range(16):
                    n = 1000 * w + k
                    got.append(_append(n))
                    if k == 8:
                        got.append(log.append("in_kind_fulfilment", _entry(-1), "test", "same"))
                    db.session.commit()
                db.session.remove()
                return got
        return run

    with app.app_context():
        _append(-2)
        db.session.commit()
    results = run_together([writer(w) for w in range(8)])
    with app.app_context():
        rows = log.entries(0, 1000)
        assert [r.index for r in rows] == list(range(1 + 8 * 16 + 1))
        assert len({i for got in results for i in got}) == 8 * 16 + 1  # "same": one index
        reference = merkle.MemoryTree()
        for row in rows:
            reference.append(bytes(row.leaf))
            assert bytes(row.leaf_hash) == merkle.leaf_hash(bytes(row.leaf))
        n = len(rows)
        assert db.session.execute(select(func.count()).select_from(LedgerNode)).scalar_one() \
            == n + n - bin(n).count("1")
        for size in range(1, n + 1):
            assert log.root(size) == reference.root(size)


def test_appending_the_same_business_event_twice_returns_its_existing_index(app):
    with app.app_context():
        assert _append(0, "claim-a") == 0
        assert _append(1, "claim-b") == 1
        assert _append(99, "claim-a") == 0
        db.session.commit()
        assert log.size() == 2


@pytest.mark.parametrize("call, args", [
    ("inclusion", (3, 3)), ("inclusion", (0, 4)), ("inclusion", (-1, 2)),
    ("consistency", (0, 2)), ("consistency", (3, 2)), ("consistency", (1, 4)),
])
def test_impossible_proof_requests_are_422(app, call, args):
    with app.app_context():
        for n in range(3):
            _append(n)
        db.session.commit()
        with pytest.raises(DomainError) as err:
            getattr(log, call)(*args)
        assert status_of(err.value) == 422 and err.value.detail


@pytest.mark.parametrize("statement", [
    "UPDATE ledger_entries SET kind = 'reversal'",
    "DELETE FROM ledger_entries",
    "UPDATE ledger_nodes SET hash = hash",
    "DELETE FROM ledger_nodes WHERE level = 0",
])
def test_database_refuses_to_update_or_delete_ledger_rows(app, statement):
    with app.app_context():
        _append(0)
        _append(1)
        db.session.commit()
        with pytest.raises(sa.exc.DBAPIError, match="append-only"):
            with db.engine.begin() as conn:
                conn.execute(sa.text(statement))
        assert log.size() == 2
        assert db.session.execute(select(LedgerEntry.kind)).scalars().all() == \
            ["in_kind_fulfilment"] * 2


def test_postgres_trigger_refuses_update_and_delete(app, needs_postgres):
    with app.app_context():
        _append(0)
        db.session.commit()
        for statement in ("UPDATE ledger_entries SET leaf = leaf", "DELETE FROM ledger_nodes"):
            with pytest.raises(sa.exc.DBAPIError, match="append-only") as err:
                with db.engine.begin() as conn:
                    conn.execute(sa.text(statement))
            assert err.value.orig.sqlstate == "P0001"  # raised by the trigger, not a constraint


def test_checkpoint_is_signed_reused_until_the_log_grows_and_matches_the_tree(app):
    with app.app_context():
        _append(0)
        db.session.commit()
        origin, vkey = log.verifier_key()
        first = log.checkpoint()
        assert log.checkpoint() == first
        assert note.parse_checkpoint(note.verify_note(first, vkey)) == (origin, 1, log.root(1))
        _append(1)
        db.session.commit()
        second = log.checkpoint()
        assert note.parse_checkpoint(note.verify_note(second, vkey))[1:] == (2, log.root(2))
        assert db.session.execute(select(func.count())
                                  .select_from(LedgerCheckpoint)).scalar_one() == 2


def test_checkpoint_refuses_to_sign_a_tree_that_does_not_extend_the_last_one(app):
    with app.app_context():
        _append(0)
        _append(1)
        db.session.commit()
        log.checkpoint()
        # Pretend the published checkpoint said something else about size 2.
        db.session.execute(sa.update(LedgerCheckpoint).values(root_hash=b"\x00" * 32))
        db.session.commit()
        _append(2)
        db.session.commit()
        with pytest.raises(merkle.ProofError):
            log.checkpoint()
        db.session.rollback()
        assert db.session.execute(select(LedgerCheckpoint.size)).scalars().all() == [2]


def test_a_commit_that_appends_rings_once_for_a_signed_checkpoint(app, actors):
    """Checkpoints are published after each batch: one signing job per appending commit, and
    running it (twice, as a retried job would) signs exactly one checkpoint of the new size."""
    from app.ledger.models import LedgerCheckpoint
    from app.queue import get_queue
    from workers.jobs import sign_checkpoint

    caseworker, moderator = actors.caseworker(), actors.moderator()
    actors.fulfil(actors.donor(), caseworker, actors.open_wish(caseworker, moderator)["id"])
    with app.app_context():
        jobs = get_queue("ledger").jobs
        assert [j.func_name for j in jobs] == ["workers.jobs.sign_checkpoint"]
        assert sign_checkpoint() == 1
        assert sign_checkpoint() == 1
        assert db.session.query(LedgerCheckpoint).count() == 1


def test_an_append_whose_connection_died_fails_as_an_outage_and_leaves_nothing(app, needs_postgres):
    """The append's statements run on the driver's connection (app.ledger.log._Driver): a
    connection killed under them is still raised as SQLAlchemy raises an outage (a 503, not a
    500), the pool is renewed, and the next append starts from a good connection."""
    from sqlalchemy.pool import NullPool

    from app.errors import is_transient_outage

    with app.app_context():
        assert _append(0) == 0
        db.session.commit()
        pid = db.session.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
        admin = sa.create_engine(db.engine.url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            assert conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"),
                                {"pid": pid}).scalar_one()
        admin.dispose()
        with pytest.raises(sa.exc.DBAPIError) as raised:
            _append(1)
        assert raised.value.connection_invalidated and is_transient_outage(raised.value)
        db.session.rollback()
        assert log.size() == 1
        assert _append(1) == 1
        db.session.commit()
        assert log.size() == 2
        merkle.check_inclusion(merkle.leaf_hash(entries.canonical(_entry(1))), 1, 2,
                               log.inclusion(1, 2), log.root(2))


def test_an_append_that_fails_in_its_insert_leaves_no_entry_and_no_node(app, needs_postgres):
    """The INSERT writes the entry and its nodes in one statement: if it fails, neither is
    there, and the log goes on from the same index."""
    with app.app_context():
        for n in range(3):
            _append(n)
        db.session.commit()
        # A node the fourth entry would write exists already (written behind the log's back,
        # as a corrupt store would have it): its INSERT fails on the primary key.
        db.session.execute(sa.insert(LedgerNode).values(level=2, index=0, hash=b"x" * 32))
        with pytest.raises(sa.exc.IntegrityError):
            _append(3)
        db.session.rollback()
        assert log.size() == 3
        assert db.session.get(LedgerNode, (0, 3)) is None
        assert db.session.get(LedgerNode, (2, 0)) is None
        assert _append(3) == 3
        db.session.commit()
        tree = merkle.MemoryTree()
        for n in range(4):
            tree.append(entries.canonical(_entry(n)))
        assert log.root(4) == tree.root()
