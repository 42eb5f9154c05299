"""The ledger on the database: append entries, read O(log n) proofs, sign consistent checkpoints.

Node storage: ledger_nodes holds node(level, index) for every complete perfect subtree, level 0
(the leaf hashes) included, so any root or proof is one indexed query over O(log n) rows.
Writers are serialized (a transaction-scoped advisory lock on PostgreSQL; SQLite allows one writer
anyway), so indices are dense and each node is written exactly once, when its last leaf arrives.
"""
from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from contextlib import contextmanager

from sqlalchemy import bindparam, func, insert, select, text, tuple_

from app.errors import DomainError, ValidationFailed
from app.extensions import db
from app.ledger import keys, merkle, note
from app.ledger.canonical import canonical
from app.ledger.models import LedgerCheckpoint, LedgerEntry, LedgerNode
from app.queue import ring_after_commit
from app.settings import instance_path, resources, settings
from app.types import utcnow
from app.uow import lock, use_case

log = logging.getLogger(__name__)

LOCK_KEY = 0x5EDCE7  # the advisory lock all ledger writers share
DEV_KEY_NAME = "weixinyuan.localhost/ledger"


CHECKPOINT_BELL = "ledger-checkpoint"  # the signing job's id (app.queue.ring)


# Taken first by every ledger writer, held to the end of its transaction. The key is written into
# the statement: one constant statement, compiled once.
_ADVISORY_LOCK_SQL = f"SELECT pg_advisory_xact_lock({LOCK_KEY})"
_ADVISORY_LOCK = text(_ADVISORY_LOCK_SQL)


def _postgres() -> bool:
    return db.session.get_bind().dialect.name == "postgresql"


def _lock(postgres: bool | None = None) -> None:
    if postgres is None:
        postgres = _postgres()
    # always the last lock a transaction takes (app.uow.LOCK_ORDER); SQLite has one writer anyway
    lock("ledger", _ADVISORY_LOCK if postgres else None)


def size() -> int:
    """The number of entries (indices are dense from 0)."""
    last = db.session.execute(select(func.max(LedgerEntry.index))).scalar_one()
    return 0 if last is None else last + 1


class _NodeCache:
    """A bounded, process-wide cache of stored nodes. A node is written once, when its last leaf
    arrives, and never changes after its commit: a cached hash is right forever. Only nodes
    read by a transaction that appended nothing are kept (one that appended may read its own
    uncommitted nodes, which a rollback would take back)."""

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._items: "OrderedDict[tuple[int, int], bytes]" = OrderedDict()
        self._lock = threading.Lock()
        # The largest size a proof's transaction saw committed: the log only grows, so a proof
        # up to it needs no size query.
        self.known_size = 0

    def get_many(self, wanted: set) -> dict[tuple[int, int], bytes]:
        with self._lock:
            return {a: self._items[a] for a in wanted if a in self._items}

    def put_many(self, found: dict[tuple[int, int], bytes]) -> None:
        with self._lock:
            self._items.update(found)
            while len(self._items) > self.max_entries:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self.known_size = 0


# ~150 bytes a node: under 10 MB. The upper levels, shared by every proof, stay; a proof of a
# random leaf misses only on its lowest levels.
node_cache = _NodeCache(max_entries=50_000)
_APPENDED = "ledger_appended_in"


def _appended_in_this_transaction() -> bool:
    return appended_in(db.session())


def _nodes(addresses, cached: bool = False) -> dict[tuple[int, int], bytes]:
    """Fetch the named nodes in one query; `cached`: through the node cache (the proofs served
    to the public; roots, appends and the auditor read the store itself)."""
    wanted = set(addresses)
    if not wanted:
        return {}
    cacheable = cached and not _appended_in_this_transaction()
    found = node_cache.get_many(wanted) if cacheable else {}
    missing = wanted - set(found)
    if missing:
        # (level, index) IN (...): one statement shape, compiled once, whatever the count.
        rows = db.session.execute(
            select(LedgerNode.level, LedgerNode.index, LedgerNode.hash)
            .where(tuple_(LedgerNode.level, LedgerNode.index).in_(sorted(missing))))
        read = {(lv, i): bytes(h) for lv, i, h in rows}
        if cacheable:
            node_cache.put_many(read)
        found.update(read)
    if len(found) != len(wanted):
        missing = sorted(wanted - set(found))
        raise RuntimeError(f"ledger nodes missing from the store: {missing[:5]}")
    return found


def _reader(addresses, cached: bool = False):
    found = _nodes(addresses, cached)
    return lambda level, index: found[(level, index)]


def _plan_nodes(plan) -> list[tuple[int, int]]:
    return [address for element in plan for address in element]


# An append on PostgreSQL is four statements: the lock, this look-up, one INSERT, the commit.
# The first three run on the driver's connection (`_Driver`), so they are written in its
# parameter style.
# The look-up answers, under the lock, in one snapshot: whether the business event has its entry
# already (`existing`, on the first row), the log's size n (`index` of the first row, level -1),
# and the nodes the new leaf n completes subtrees with. Those are the left children of
# merkle.completed_by(n): for each level b below the number of trailing one bits of n, the
# perfect subtree of 2^b leaves just before the new leaf, node(b, (n >> b) - 1).
_LOOKUP = """
WITH log AS (SELECT coalesce(max(index) + 1, 0) AS size FROM ledger_entries)
SELECT -1 AS level, log.size AS index, NULL AS hash,
       (SELECT e.index FROM ledger_entries AS e
        WHERE e.source_type = %(source_type)s AND e.source_id = %(source_id)s) AS existing
FROM log
UNION ALL
SELECT b.level, (log.size >> b.level) - 1,
       (SELECT node.hash FROM ledger_nodes AS node
        WHERE node.level = b.level AND node.index = (log.size >> b.level) - 1),
       NULL
FROM log CROSS JOIN generate_series(0, 62) AS b(level)
WHERE (log.size + 1) %% (CAST(2 AS bigint) << b.level) = 0
"""
# (Each node is a correlated subquery, a primary-key look-up by both columns whatever the
# planner's estimates; as a join, it once chose to scan a whole level and filter.)

# The entry and all its nodes (its leaf hash at level 0 and every subtree it completes) in one
# statement whatever their number: the nodes go as three arrays. The bytes and the arrays are
# sent in binary (`%b`): no hex text to build for each hash (~60 µs of CPU an append).
_INSERT = """
WITH entry AS (
    INSERT INTO ledger_entries (index, leaf, leaf_hash, kind, source_type, source_id, created_at)
    VALUES (%(index)s, %(leaf)b, %(leaf_hash)b, %(kind)s, %(source_type)s, %(source_id)s,
            %(created_at)s)
)
INSERT INTO ledger_nodes (level, index, hash)
SELECT * FROM unnest(CAST(%(levels)b AS integer[]), CAST(%(indexes)b AS bigint[]),
                     CAST(%(hashes)b AS bytea[]))
"""

# Other databases (SQLite in development): the same work in portable statements.
_EXISTING_AND_SIZE = select(
    select(LedgerEntry.__table__.c.index).where(
        LedgerEntry.__table__.c.source_type == bindparam("source_type"),
        LedgerEntry.__table__.c.source_id == bindparam("source_id")).scalar_subquery(),
    select(func.max(LedgerEntry.__table__.c.index)).scalar_subquery())
_INSERT_ENTRY = insert(LedgerEntry.__table__)
_INSERT_NODES = insert(LedgerNode.__table__)


def _look_up(source_type: str, source_id: str):
    """Other databases: (existing index or None, size, {address: hash} of the left children the
    leaf completes)."""
    params = {"source_type": source_type, "source_id": source_id}
    existing, last = db.session.execute(_EXISTING_AND_SIZE, params).one()
    index = 0 if last is None else last + 1
    if existing is not None:
        return existing, index, {}
    return None, index, _nodes((level - 1, 2 * i) for level, i in merkle.completed_by(index))


class _Driver:
    """The session's connection, its transaction begun, as the driver's (psycopg's) own: the
    append's three statements are constant SQL with plain values, and SQLAlchemy's execution
    around each (compiled-cache look-up, execution context, result object) cost more CPU than
    the driver's work and the database's together (bench/README.md, issue 11, third pass). A
    driver error goes through SQLAlchemy's own handling, so it is raised as SQLAlchemy would
    have raised it, and a dead connection invalidates the pool (the 503 of an outage)."""

    def __init__(self, connection) -> None:
        self.connection = connection  # SQLAlchemy's
        self.driver = connection.connection.driver_connection

    @contextmanager
    def errors(self, statement: str, params=None):
        try:
            yield
        except self.connection.dialect.loaded_dbapi.Error as error:
            self.connection._handle_dbapi_exception(error, statement, params, None, None)


def _look_up_on_postgres(driver: _Driver, source_type: str, source_id: str):
    """Take the ledger's lock, then look up (existing index or None, size, {address: hash} of
    the left children the leaf completes) under it. (psycopg's pipeline mode would send both in
    one round trip, but it cost ~60 µs more CPU an append, held under the GIL, than the round
    trip it saves: bench/README.md, issue 11, third pass.)"""
    params = {"source_type": source_type, "source_id": source_id}
    with driver.errors(_ADVISORY_LOCK_SQL):
        driver.driver.execute(_ADVISORY_LOCK_SQL)
    with driver.errors(_LOOKUP, params):
        rows = driver.driver.execute(_LOOKUP, params).fetchall()
    existing = index = None
    lefts = {}
    for level, i, hash_, found_index in rows:
        if level == -1:  # (UNION ALL promises no order)
            existing, index = found_index, i
        elif hash_ is not None:
            lefts[(level, i)] = bytes(hash_)
    return existing, index, lefts


def append(kind: str, entry: dict, source_type: str, source_id: str) -> int:
    """Add one entry inside the caller's unit of work; the same (source_type, source_id) again
    returns the index it already has. Returns the entry's index."""
    session = db.session()
    connection = session.connection()  # (begins the session's transaction, if not yet)
    postgres = connection.dialect.name == "postgresql"
    # Nodes this transaction reads may be its own, uncommitted: not for the node cache.
    session.info[_APPENDED] = session.get_transaction()
    if postgres:
        lock("ledger")  # the lock order's check; the lock itself is taken on the driver below
        driver = _Driver(connection)
        existing, index, lefts = _look_up_on_postgres(driver, source_type, source_id)
    else:
        _lock(False)
        existing, index, lefts = _look_up(source_type, source_id)
    if existing is not None:
        return existing
    leaf = canonical(entry)
    leaf_hash = merkle.leaf_hash(leaf)
    # Each completed node's left child is an older stored node; its right child is the one just
    # made below it (the new leaf at the bottom).
    completed = merkle.completed_by(index)
    if len(lefts) != len(completed):
        raise RuntimeError(f"ledger nodes missing from the store below leaf {index}")
    levels, indexes, hashes = [0], [index], [leaf_hash]
    right = leaf_hash
    for level, i in completed:
        right = merkle.node_hash(lefts[(level - 1, 2 * i)], right)
        levels.append(level)
        indexes.append(i)
        hashes.append(right)
    row = {"index": index, "leaf": leaf, "leaf_hash": leaf_hash, "kind": kind,
           "source_type": source_type, "source_id": source_id, "created_at": utcnow()}
    if postgres:
        params = {**row, "levels": levels, "indexes": indexes, "hashes": hashes}
        with driver.errors(_INSERT, params):
            driver.driver.execute(_INSERT, params)
    else:
        session.execute(_INSERT_ENTRY, row)
        session.execute(_INSERT_NODES, [{"level": lv, "index": i, "hash": h}
                                        for lv, i, h in zip(levels, indexes, hashes)])
    # Publish: once this commits, a job signs a checkpoint covering it. One job id for all
    # appends: a burst of commits adds nothing while a signing job waits, and one running
    # already (it may have read the tree before this commit) runs once more (`again`). The
    # periodic ledger-checkpoint job rings the same bell if this one is lost.
    ring_after_commit(session, "ledger", "workers.jobs.sign_checkpoint",
                      key=CHECKPOINT_BELL, again=True)
    return index


def appended_in(session) -> bool:
    """Whether `session`'s current transaction appended (the public site's page cache asks
    before a commit: the ledger's pages change with it)."""
    return session.info.get(_APPENDED) is session.get_transaction()


def root(tree_size: int) -> bytes:
    plan = merkle.root_plan(tree_size)
    return merkle.root_from_nodes(tree_size, _reader(plan))


def _invalid(detail: str) -> DomainError:
    return ValidationFailed(detail=detail)


def _size_for_proof(tree_size: int) -> int:
    """size(), or the size already known to be committed if that covers `tree_size`."""
    if tree_size <= node_cache.known_size:
        return node_cache.known_size
    current = size()
    if not _appended_in_this_transaction():
        node_cache.known_size = max(node_cache.known_size, current)
    return current


def inclusion(index: int, tree_size: int) -> list[bytes]:
    current = _size_for_proof(tree_size)
    if tree_size > current:
        raise _invalid(f"tree_size 超出账本当前大小（{current}）")
    if not 0 <= index < tree_size:
        raise _invalid("index 必须小于 tree_size 且不小于 0")
    plan = merkle.inclusion_plan(index, tree_size)
    return merkle.assemble(plan, _reader(_plan_nodes(plan), cached=True))


def consistency(first: int, second: int) -> list[bytes]:
    current = _size_for_proof(second)
    if second > current:
        raise _invalid(f"second 超出账本当前大小（{current}）")
    if first <= 0:
        raise _invalid("first 必须大于 0：空树的一致性证明没有意义")
    if first > second:
        raise _invalid("first 不能大于 second")
    plan = merkle.consistency_plan(first, second)
    return merkle.assemble(plan, _reader(_plan_nodes(plan), cached=True))


def entries(start: int, limit: int) -> list[LedgerEntry]:
    return list(db.session.execute(select(LedgerEntry).where(
        LedgerEntry.index >= start, LedgerEntry.index < start + limit)
        .order_by(LedgerEntry.index)).scalars())


def signer():
    """(name, private key) from LEDGER_KEY_FILE; in development without one, a key generated
    into the instance folder on first use and reused after."""
    cached = resources().get("ledger_signer")
    if cached:
        return cached
    path = settings().get("LEDGER_KEY_FILE")
    if not path:
        if settings().get("APP_ENV") == "production":
            raise RuntimeError("LEDGER_KEY_FILE must be set in production")
        path = os.path.join(instance_path(), "ledger.key")
        try:
            keys.keygen(DEV_KEY_NAME, path)
            log.warning("generated a development ledger key at %s", path)
        except FileExistsError:
            pass
    loaded = resources()["ledger_signer"] = keys.load_signer(path)
    return loaded


def verifier_key() -> tuple[str, str]:
    """(origin, vkey): the origin line of every checkpoint is the key's name."""
    name, private_key = signer()
    return name, note.verifier_key(name, private_key.public_key())


@use_case
def checkpoint() -> str:
    """The signed checkpoint of the current tree, signing (and committing) a new one if the log
    grew since the last. A new one is signed only after proving it extends the previous one."""
    _lock()
    latest = db.session.execute(select(LedgerCheckpoint)
                                .order_by(LedgerCheckpoint.size.desc()).limit(1)).scalar()
    tree_size = size()
    if latest is not None and latest.size == tree_size:
        return latest.note  # nothing new: the unit of work ends and releases the lock
    new_root = root(tree_size)
    if latest is not None:
        if latest.size > tree_size:
            raise RuntimeError(f"ledger shrank from {latest.size} to {tree_size} entries")
        if latest.size > 0:
            # Never sign a tree that does not extend the one already published.
            merkle.check_consistency(latest.size, tree_size, bytes(latest.root_hash), new_root,
                                     consistency(latest.size, tree_size))
    name, private_key = signer()
    text_ = note.sign_note(note.checkpoint_body(name, tree_size, new_root), name, private_key)
    db.session.add(LedgerCheckpoint(size=tree_size, root_hash=new_root, note=text_))
    log.info("ledger checkpoint signed at size %d", tree_size)
    return text_
