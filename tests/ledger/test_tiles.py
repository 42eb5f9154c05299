"""The ledger served as a C2SP tlog-tiles log (https://c2sp.org/tlog-tiles) at /api/v1/ledger/tlog.

Expected tiles come from the spec's own definition — tile n at level l holds, for i in 0..W-1,
MTH(D[(n*256 + i) * 256**l : (n*256 + i + 1) * 256**l]) — computed here from the leaf bytes with a
few lines of RFC 6962, never from the server's tables. The tile reader below is written from the
spec too (its own path encoding, its own root computation): it is what a mirror would do.
"""
from __future__ import annotations

import gzip
import hashlib
import random
from datetime import datetime, timezone

import pytest
import sqlalchemy as sa
from sqlalchemy import func, insert, select

from app.extensions import db
from app.ledger import entries, log, merkle, note, tiles
from app.ledger.models import LedgerCheckpoint, LedgerEntry, LedgerNode

TLOG = "/api/v1/ledger/tlog"
AT = datetime(2026, 11, 25, 8, 30, 15, tzinfo=timezone.utc)
IMMUTABLE = "public, max-age=31536000, immutable"


# ---- RFC 6962 and the tlog-tiles client side, independent of app.ledger --------------------------

def _leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _mth(hashes: list[bytes]) -> bytes:
    """RFC 6962 2.1 MTH over already-hashed leaves: split at the largest power of two below n."""
    if not hashes:
        return hashlib.sha256(b"").digest()
    if len(hashes) == 1:
        return hashes[0]
    k = 1 << ((len(hashes) - 1).bit_length() - 1)
    return _node(_mth(hashes[:k]), _mth(hashes[k:]))


def _n_path(n: int) -> str:
    """<N> as the spec writes it: zero-padded 3-digit elements, all but the last starting with x."""
    digits = str(n)
    digits = digits.zfill(-(-len(digits) // 3) * 3)
    groups = [digits[i:i + 3] for i in range(0, len(digits), 3)]
    return "/".join([*("x" + g for g in groups[:-1]), groups[-1]])


def _tile_path(level: int | str, n: int, width: int) -> str:
    return f"tile/{level}/{_n_path(n)}" + ("" if width == 256 else f".p/{width}")


def _width(tree_size: int, level: int, n: int) -> int:
    """The spec: a tree of size s has floor(s / 256**l) hashes at level l; tile n, a slice."""
    return max(0, min(256, tree_size // 256 ** level - n * 256))


def _spec_tiles(tree_size: int) -> list[tuple[int, int, int]]:
    out, level = [], 0
    while tree_size // 256 ** level:
        count = tree_size // 256 ** level
        out += [(level, n, _width(tree_size, level, n)) for n in range(-(-count // 256))]
        level += 1
    return out


def _expected_tile(leaf_hashes: list[bytes], level: int, n: int, width: int) -> bytes:
    span = 256 ** level
    return b"".join(_mth(leaf_hashes[(n * 256 + i) * span:(n * 256 + i + 1) * span])
                    for i in range(width))


def _decode_bundle(data: bytes) -> list[bytes]:
    out, at = [], 0
    while at < len(data):
        assert at + 2 <= len(data), "truncated length prefix"
        length = int.from_bytes(data[at:at + 2], "big")
        assert at + 2 + length <= len(data), "truncated entry"
        out.append(data[at + 2:at + 2 + length])
        at += 2 + length
    return out


class TileReader:
    """A mirror's view: only <prefix>/checkpoint and tiles, through `fetch(path) -> bytes`."""

    def __init__(self, fetch) -> None:
        self.fetch = fetch
        self.tiles: dict[str, bytes] = {}

    def checkpoint(self, vkey: str) -> tuple[int, bytes]:
        body = note.verify_note(self.fetch("checkpoint").decode("utf-8"), vkey)
        _, size, root = note.parse_checkpoint(body)
        return size, root

    def _hash(self, tree_size: int, level: int, i: int) -> bytes:
        n = i // 256
        path = _tile_path(level, n, _width(tree_size, level, n))
        if path not in self.tiles:
            data = self.fetch(path)
            assert len(data) == 32 * _width(tree_size, level, n), path
            self.tiles[path] = data
        at = (i % 256) * 32
        return self.tiles[path][at:at + 32]

    def subtree(self, tree_size: int, height: int, k: int) -> bytes:
        """The perfect subtree of 2**height leaves at index k, from the tile at level height // 8
        (hashing the tile's hashes for the heights between tile levels)."""
        level, below = divmod(height, 8)
        first = k << below
        return _mth([self._hash(tree_size, level, first + j) for j in range(1 << below)])

    def root(self, tree_size: int) -> bytes:
        """MTH(D[0:size]): the perfect subtrees of size's binary digits, folded from the right."""
        pieces, start = [], 0
        for height in reversed(range(tree_size.bit_length())):
            if tree_size >> height & 1:
                pieces.append(self.subtree(tree_size, height, start >> height))
                start += 1 << height
        if not pieces:
            return hashlib.sha256(b"").digest()
        acc = pieces[-1]
        for piece in reversed(pieces[:-1]):
            acc = _node(piece, acc)
        return acc


# ---- helpers on the app side ---------------------------------------------------------------------

def _entry_of(n: int) -> dict:
    return entries.entry("in_kind_fulfilment", wish_id=f"wsh_{n}", town="350505101",
                         item="书包" * (n % 5 + 1), value_fen=100 + n, at=AT)


class Ledger:
    """The test's copy of what it put in the ledger: the leaf bytes, and merkle.MemoryTree."""

    def __init__(self, app) -> None:
        self.app = app
        self.leaves: list[bytes] = []
        self.tree = merkle.MemoryTree()

    def append_to(self, size: int) -> None:
        """Grow to `size` through log.append, the production write path (~10 ms an entry)."""
        with self.app.app_context():
            for n in range(len(self.leaves), size):
                self.leaves.append(entries.canonical(_entry_of(n)))
                self.tree.append(self.leaves[-1])
                log.append("in_kind_fulfilment", _entry_of(n), "tiles-test", f"e-{n}")
            db.session.commit()

    def bulk_to(self, size: int) -> None:
        """Grow to `size` fast: the rows log.append would write (test_log_db checks append
        against MemoryTree), entries and nodes copied in bulk, nodes taken from MemoryTree."""
        start = len(self.leaves)
        new_entries, new_nodes = [], []
        for n in range(start, size):
            data = entries.canonical(_entry_of(n))
            self.leaves.append(data)
            self.tree.append(data)
            new_entries.append({"index": n, "leaf": data, "leaf_hash": _leaf_hash(data),
                                "kind": "in_kind_fulfilment", "source_type": "tiles-bulk",
                                "source_id": f"b-{n}", "created_at": AT})
        for height in range(size.bit_length()):
            for k in range(start >> height, size >> height):
                new_nodes.append({"level": height, "index": k,
                                  "hash": self.tree.get_node(height, k)})
        with self.app.app_context():
            for model, rows in ((LedgerEntry, new_entries), (LedgerNode, new_nodes)):
                _bulk_insert(model.__table__, rows)
            db.session.commit()


def _bulk_insert(table, rows: list[dict]) -> None:
    """COPY on PostgreSQL (an executemany of 100k rows takes ~15 s there), else executemany."""
    if not rows:
        return
    connection = db.session.connection()
    if connection.dialect.name != "postgresql":
        connection.execute(insert(table), rows)
        return
    columns = list(rows[0])
    cursor = connection.connection.driver_connection.cursor()
    with cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row([row[c] for c in columns])


def _sign(app) -> tuple[str, str]:
    with app.app_context():
        return log.checkpoint(), log.verifier_key()[1]


def _fetcher(client):
    def fetch(path: str) -> bytes:
        res = client.get(f"{TLOG}/{path}")
        assert res.status_code == 200, (path, res.status_code, res.get_data(as_text=True))
        return res.get_data()
    return fetch


def _check_tile(client, leaf_hashes, leaves, level, n, width, *, bundle: bool) -> bytes:
    path = _tile_path(level, n, width)
    res = client.get(f"{TLOG}/{path}")
    assert res.status_code == 200, path
    assert res.headers["Content-Type"] == "application/octet-stream"
    assert res.headers["Cache-Control"] == IMMUTABLE
    data = res.get_data()
    assert data == _expected_tile(leaf_hashes, level, n, width), path
    if level == 0 and bundle:
        bundle = client.get(f"{TLOG}/{_tile_path('entries', n, width)}")
        assert bundle.status_code == 200 and bundle.headers["Cache-Control"] == IMMUTABLE
        assert bundle.headers["Content-Type"] == "application/octet-stream"
        decoded = _decode_bundle(bundle.get_data())
        assert decoded == leaves[n * 256:n * 256 + width]
        # each entry hashes to the corresponding entry of the level-0 tile
        assert b"".join(_leaf_hash(e) for e in decoded) == data
    return data


def _check_tree(client, leaves: list[bytes], vkey: str, *, every_tile: bool,
                every_bundle: bool = True) -> dict[str, bytes]:
    size = len(leaves)
    leaf_hashes = [_leaf_hash(x) for x in leaves]
    reader = TileReader(_fetcher(client))
    signed_size, signed_root = reader.checkpoint(vkey)
    assert signed_size == size
    assert signed_root == _mth(leaf_hashes)
    assert reader.root(size) == signed_root
    seen = {}
    for level, n, width in _spec_tiles(size):
        # all tiles, or the right edge of every level (where tiles change as the tree grows)
        edge = n >= (size // 256 ** level) // 256 - 1
        if every_tile or edge:
            seen[_tile_path(level, n, width)] = _check_tile(
                client, leaf_hashes, leaves, level, n, width,
                bundle=every_bundle or edge or n % 16 == 0)
    return seen


# ---- path encoding (pure) ------------------------------------------------------------------------

@pytest.mark.parametrize("n, path", [(0, "000"), (7, "007"), (999, "999"), (1000, "x001/000"),
                                     (1234067, "x001/x234/067"), (10 ** 9, "x001/x000/x000/000")])
def test_tile_index_is_written_in_x_prefixed_3_digit_groups(n, path):
    assert tiles.encode_index(n) == _n_path(n) == path
    assert tiles.parse_tile_path(f"0/{path}") == tiles.Tile(0, n, 256)
    assert tiles.parse_bundle_path(path) == tiles.Tile(None, n, 256)


@pytest.mark.parametrize("path, tile", [
    ("0/000", tiles.Tile(0, 0, 256)),
    ("0/000.p/1", tiles.Tile(0, 0, 1)),
    ("0/000.p/255", tiles.Tile(0, 0, 255)),
    ("63/000", tiles.Tile(63, 0, 256)),
    ("1/x001/x234/067.p/17", tiles.Tile(1, 1234067, 17)),
])
def test_canonical_tile_paths_parse(path, tile):
    assert tiles.parse_tile_path(path) == tile
    assert tile.path == f"tile/{path}"


@pytest.mark.parametrize("path", [
    "", "0", "0/", "00/000", "01/000", "64/000", "100/000", "-1/000", "+0/000", "a/000",
    "entries/000", "0/0", "0/00", "0/0000", "0/1000", "0/x000/001", "0/x001", "0/001/000",
    "0/x001/x2/000", "0/X001/000", "0/x001/000/", "0//000", "0/000/", "0/٠٠٠",
    "0/000.p", "0/000.p/", "0/000.p/0", "0/000.p/256", "0/000.p/300", "0/000.p/05",
    "0/000.p/+5", "0/000.p/5/", "0/000.p/5/6", "0/000.P/5", "0/x001.p/5", "0/000.p.p/5",
])
def test_non_canonical_tile_paths_name_nothing(path):
    with pytest.raises(tiles.TileNotFound):
        tiles.parse_tile_path(path)


@pytest.mark.parametrize("path", ["", "0", "00", "0000", "x000/001", "x1/000", "000.p/0",
                                  "000.p/256", "000.p/007", "entries/000", "0/000"])
def test_non_canonical_bundle_paths_name_nothing(path):
    with pytest.raises(tiles.TileNotFound):
        tiles.parse_bundle_path(path)


def test_tiles_of_a_tree_are_the_ones_the_spec_lists():
    # "a tree of size 70,000 will be represented by 273 full level 0 tiles, one partial level 0
    # tile of width 112, one full level 1 tile, one partial level 1 tile of width 17, and one
    # partial level 2 tile of width 1."
    hashes = [t for t in tiles.tiles_of(70000) if t.level is not None]
    assert [t for t in hashes if t.level == 0 and not t.partial] == \
        [tiles.Tile(0, n) for n in range(273)]
    assert [t for t in hashes if t.partial or t.level > 0] == [
        tiles.Tile(0, 273, 112), tiles.Tile(1, 0), tiles.Tile(1, 1, 17), tiles.Tile(2, 0, 1)]
    # "a tree of size 256 will be represented by a full level 0 tile and a partial level 1 tile of
    # width 1"; entry bundles follow the level-0 tiles.
    assert tiles.tiles_of(256) == [tiles.Tile(0, 0), tiles.Tile(1, 0, 1), tiles.Tile(None, 0)]
    assert tiles.tiles_of(0) == []
    for size in (1, 255, 257, 65535, 65536, 65537, 70000):
        assert sorted((t.level, t.index, t.width) for t in tiles.tiles_of(size)
                      if t.level is not None) == sorted(_spec_tiles(size))


# ---- served on the real database -----------------------------------------------------------------

def test_every_tile_matches_rfc6962_and_a_tile_reader_recomputes_each_checkpoint(app, client):
    """Sizes 0, 1, 2, 255, 256, 257 through log.append, then a few random larger ones; after each
    signed checkpoint every tile and bundle matches the spec's definition, and every tile served
    for a smaller tree (partial ones included) is still served, unchanged."""
    rng = random.Random(20261125)
    ledger = Ledger(app)
    served: dict[str, bytes] = {}
    for size in [0, 1, 2, 255, 256, 257, rng.randint(258, 511), 512, rng.randint(513, 1000)]:
        if size <= 257:
            ledger.append_to(size)
        else:
            ledger.bulk_to(size)
        _, vkey = _sign(app)
        if size == 0:
            assert TileReader(_fetcher(client)).checkpoint(vkey) == (0, hashlib.sha256().digest())
            assert client.get(f"{TLOG}/tile/0/000.p/1").status_code == 404
            continue
        seen = _check_tree(client, ledger.leaves, vkey, every_tile=True)
        for path, data in served.items():
            assert _fetcher(client)(path) == data, path
        served.update(seen)
    # and the reference store agrees with the spec's definition (the same data, a third way)
    reference = ledger.tree
    assert served["tile/0/000"] == b"".join(reference.get_node(0, i) for i in range(256))
    assert served["tile/1/000.p/2"] == reference.get_node(8, 0) + reference.get_node(8, 1)
    assert served["tile/0/000.p/1"] == reference.get_node(0, 0)


def test_a_large_tree_through_bulk_rows(app, client):
    """Past 65536 entries: a full level-1 tile, level-2 tiles, 3-group tile paths' neighbours."""
    rng = random.Random(6962)
    ledger = Ledger(app)
    final = 65536 + 256 * rng.randint(1, 6) + rng.randint(1, 255)
    for size in (65535, 65536, 65537, final):
        ledger.bulk_to(size)
        _, vkey = _sign(app)
        # every hash tile of the final tree; its bundles sampled (the same code as all of them)
        _check_tree(client, ledger.leaves, vkey, every_tile=size == final, every_bundle=False)
    assert client.get(f"{TLOG}/tile/1/000").status_code == 200   # 65536 entries
    assert client.get(f"{TLOG}/tile/2/000.p/1").status_code == 200
    assert client.get(f"{TLOG}/tile/2/000.p/2").status_code == 404
    assert client.get(f"{TLOG}/tile/3/000.p/1").status_code == 404


def test_tlog_checkpoint_is_the_latest_signed_one_and_bounds_the_tiles(app, client):
    res = client.get(f"{TLOG}/checkpoint")
    assert res.status_code == 404 and res.get_json()["code"] == "not_found"  # none signed yet
    ledger = Ledger(app)
    ledger.bulk_to(300)
    signed, vkey = _sign(app)
    ledger.bulk_to(520)   # appended, not yet signed
    res = client.get(f"{TLOG}/checkpoint")
    assert res.status_code == 200
    assert res.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert res.headers["Cache-Control"] == "public, max-age=5"
    # only reads: still the signed one, and nothing new was signed
    assert res.get_data(as_text=True) == signed
    assert note.parse_checkpoint(note.verify_note(signed, vkey))[1] == 300
    with app.app_context():
        assert db.session.execute(select(func.count())
                                  .select_from(LedgerCheckpoint)).scalar_one() == 1
    beyond = ["tile/0/001.p/45", "tile/entries/001.p/45", "tile/0/001", "tile/entries/001",
              "tile/0/002.p/1", "tile/1/000.p/2", "tile/2/000.p/1", "tile/0/x001/000",
              "tile/63/000.p/1", "tile/63/x999/x999/x999/x999/x999/999",
              "tile/0/x999/x999/x999/x999/x999/x999/x999/999.p/7"]
    for path in beyond:
        res = client.get(f"{TLOG}/{path}")
        assert res.status_code == 404, path
        assert res.mimetype == "application/problem+json" and res.get_json()["code"] == "not_found"
        assert res.headers["Cache-Control"] == "no-store"  # appears when a checkpoint covers it
    assert client.get(f"{TLOG}/tile/0/001.p/44").status_code == 200
    assert client.get(f"{TLOG}/tile/0/001.p/1").status_code == 200  # any covered prefix
    assert client.get(f"{TLOG}/tile/1/000.p/1").status_code == 200
    # /ledger/checkpoint signs on demand; then the tlog side serves that one and its tiles
    assert client.get("/api/v1/ledger/checkpoint").get_data(as_text=True) == \
        client.get(f"{TLOG}/checkpoint").get_data(as_text=True) != signed
    for path in beyond[:6]:
        assert client.get(f"{TLOG}/{path}").status_code == 200, path


MALFORMED = [
    "tile/00/000", "tile/01/000", "tile/64/000", "tile/-1/000", "tile/x/000", "tile/0/0",
    "tile/0/00", "tile/0/0000", "tile/0/x000/000", "tile/0/x001", "tile/0/X001/000",
    "tile/0/000.p/0", "tile/0/000.p/256", "tile/0/000.p/010", "tile/0/000.p/+5", "tile/0/000.p",
    "tile/0/000/", "tile/0/000.p/5/", "tile/entries/0", "tile/entries/000.p/0",
    "tile/entries/x000/000", "tile/entries/000.p/256", "tile/entries/0/000", "tile/entries",
    "tile/", "tile/0/%30%30%30",
]


def test_malformed_paths_are_404_problems(app, client):
    Ledger(app).bulk_to(10)
    _sign(app)
    for path in MALFORMED:
        res = client.get(f"{TLOG}/{path}")
        assert res.status_code == 404, path
        assert res.mimetype == "application/problem+json", path
        assert res.get_json()["code"] == "not_found", path
    assert client.get(f"{TLOG}/tile/0/000.p/10").status_code == 200
    assert client.get(f"{TLOG}/tile/entries/000.p/10").status_code == 200


def test_entry_bundles_are_gzipped_when_the_client_accepts_it(app, client):
    ledger = Ledger(app)
    ledger.bulk_to(40)
    _sign(app)
    plain = client.get(f"{TLOG}/tile/entries/000.p/40", headers={"Accept-Encoding": "identity"})
    zipped = client.get(f"{TLOG}/tile/entries/000.p/40",
                        headers={"Accept-Encoding": "gzip, identity"})
    assert "Content-Encoding" not in plain.headers
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert all("Accept-Encoding" in res.headers["Vary"] for res in (plain, zipped))
    assert gzip.decompress(zipped.get_data()) == plain.get_data()
    assert _decode_bundle(plain.get_data()) == ledger.leaves
    assert len(zipped.get_data()) < len(plain.get_data())


def test_a_tile_is_one_range_query_over_stored_nodes(app, client):
    """No hashing, no separate checkpoint lookup: one indexed range scan, bounded in SQL by the
    latest signed checkpoint."""
    Ledger(app).bulk_to(700)
    _sign(app)
    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    with app.app_context():
        engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        for path in ("tile/0/001", "tile/1/000.p/2", "tile/entries/002.p/188"):
            statements.clear()
            assert client.get(f"{TLOG}/{path}").status_code == 200, path
            assert len(statements) == 1, (path, statements)
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
