"""The ledger in the C2SP tlog-tiles static layout (https://c2sp.org/tlog-tiles), read side.

Layout (relative to the log's prefix):
  checkpoint                   the latest signed checkpoint note
  tile/<L>/<N>[.p/<W>]         hash tile: node(8L, N*256 + i) for i in 0..W-1, 32 bytes each
  tile/entries/<N>[.p/<W>]     entry bundle: leaves N*256 .. N*256+W-1, each a big-endian uint16
                               length followed by the leaf bytes (the exact bytes hashed)
`<L>` is 0..63 in decimal without leading zeros; `<N>` is written in 3-digit groups, all but the
last prefixed with "x" (1234067 -> x001/x234/067); `.p/<W>` (W in 1..255, no leading zeros) only on
partial tiles, W = 256 being the full tile, written without a suffix.

A tile hash at level L is MTH of 256**L consecutive leaves: exactly the perfect subtree node at
height 8L that log.append stores, so a tile is one range scan of ledger_nodes' primary key, with no
hashing. Only what the latest *signed* checkpoint covers is served: a tile, full or partial, exists
when its W hashes all lie inside the tree of that size. Any such W is served, not just the widths of
checkpointed sizes, and partial tiles stay served after their full tile exists: a partial tile is a
prefix of hashes already published, so serving it reveals nothing new, and a client still working
from an older checkpoint never misses one. Every tile that exists never changes (the tables are
append-only), which is why the HTTP layer may cache them, partial ones included, for a long time.

Paths that are not the one canonical spelling of a tile (leading zeros, a missing "x", W = 0 or 256,
L > 63, ...) name no resource, exactly as on a static file server: TileNotFound, like a tile beyond
the tree.
"""
from __future__ import annotations

import re
import struct
from dataclasses import dataclass

from sqlalchemy import func, select

from app.extensions import db
from app.ledger.models import LedgerCheckpoint, LedgerEntry, LedgerNode

HEIGHT = 8                    # tree levels per tile
WIDTH = 1 << HEIGHT           # hashes in a full tile
MAX_LEVEL = 63                # the spec's bound on <L>
MAX_ENTRY = 0xFFFF            # an entry bundle's uint16 length prefix
MAX_TREE = (1 << 63) - 1      # indices are BIGINT

_LEVEL = re.compile(r"0|[1-9][0-9]{0,1}")        # 0..99 spelt without leading zeros
_WIDTH = re.compile(r"[1-9][0-9]{0,2}")          # 1..999 spelt without leading zeros
_GROUP = re.compile(r"[0-9]{3}")


class TileNotFound(LookupError):
    """No such resource: a malformed path, or a tile not (yet) covered by the signed checkpoint.
    The message is user-facing (a problem's detail), hence Chinese."""


@dataclass(frozen=True)
class Tile:
    level: int | None     # None: an entry bundle (its hashes are the level-0 tile's)
    index: int
    width: int = WIDTH

    @property
    def partial(self) -> bool:
        return self.width < WIDTH

    @property
    def path(self) -> str:
        """The tile's path below the log prefix, e.g. tile/0/x001/x234/067.p/5."""
        level = "entries" if self.level is None else str(self.level)
        suffix = f".p/{self.width}" if self.partial else ""
        return f"tile/{level}/{encode_index(self.index)}{suffix}"


def encode_index(n: int) -> str:
    """<N> as path elements: zero-padded 3-digit groups, every group but the last after an "x"."""
    if n < 0:
        raise ValueError("a tile index is never negative")
    groups = [f"{n % 1000:03d}"]
    n //= 1000
    while n:
        groups.append(f"x{n % 1000:03d}")
        n //= 1000
    return "/".join(reversed(groups))


def _parse_index_width(parts: list[str]) -> tuple[int, int]:
    """`["x001", "x234", "067.p", "5"]` -> (1234067, 5); only the canonical spelling parses."""
    width = WIDTH
    if len(parts) >= 2 and parts[-2].endswith(".p"):
        if not _WIDTH.fullmatch(parts[-1]) or int(parts[-1]) >= WIDTH:
            raise TileNotFound("不满瓦片的宽度 W 须为 1..255，且无前导零")
        width = int(parts[-1])
        parts = [*parts[:-2], parts[-2][:-2]]
    if not parts or not _GROUP.fullmatch(parts[-1]):
        raise TileNotFound("瓦片序号的最后一段须为三位数字")
    for group in parts[:-1]:
        if not (group.startswith("x") and _GROUP.fullmatch(group[1:])):
            raise TileNotFound("瓦片序号除最后一段外，每段须为 x 加三位数字")
    if len(parts) > 1 and parts[0] == "x000":
        raise TileNotFound("瓦片序号不能以 x000 开头")
    index = 0
    for group in parts:
        index = index * 1000 + int(group.lstrip("x"))
    return index, width


def parse_tile_path(path: str) -> Tile:
    """`<L>/<N>[.p/<W>]` (what follows tile/) -> Tile; TileNotFound unless canonical."""
    level, _, rest = path.partition("/")
    if not _LEVEL.fullmatch(level) or int(level) > MAX_LEVEL:
        raise TileNotFound("瓦片层级 L 须为 0..63，且无前导零")
    index, width = _parse_index_width(rest.split("/"))
    return Tile(int(level), index, width)


def parse_bundle_path(path: str) -> Tile:
    """`<N>[.p/<W>]` (what follows tile/entries/) -> Tile with level None."""
    index, width = _parse_index_width(path.split("/"))
    return Tile(None, index, width)


# ---- the published tree --------------------------------------------------------------------------

def latest_checkpoint() -> LedgerCheckpoint | None:
    """The latest signed checkpoint (the largest: each one extends the one before). Read only:
    signing is the checkpoint job's (and /ledger/checkpoint's) business, never a tile reader's."""
    return db.session.execute(select(LedgerCheckpoint)
                              .order_by(LedgerCheckpoint.size.desc()).limit(1)).scalar()


def published_size() -> int:
    latest = select(func.coalesce(func.max(LedgerCheckpoint.size), 0))
    return db.session.execute(latest).scalar_one()


def available(tile: Tile, tree_size: int) -> int:
    """How many of the tile's 256 slots a tree of `tree_size` leaves fills (0..256)."""
    height = HEIGHT * (tile.level or 0)
    return max(0, min(WIDTH, (tree_size >> height) - tile.index * WIDTH))


def tiles_of(tree_size: int) -> list[Tile]:
    """Every tile (hash tiles and entry bundles) of the tree, full and the one partial per level,
    as the spec lists them (a tree of 256 leaves: a full level-0 tile and level-1 .p/1)."""
    out, level = [], 0
    while (count := tree_size >> (HEIGHT * level)):
        out += [Tile(level, n) for n in range(count // WIDTH)]
        if count % WIDTH:
            out.append(Tile(level, count // WIDTH, count % WIDTH))
        level += 1
    out += [Tile(None, t.index, t.width) for t in out if t.level == 0]
    return out


def _read(tile: Tile, columns, model, *where) -> list:
    """The tile's W rows in one indexed range scan, returned only if the latest signed checkpoint
    covers the whole tile (a condition inside the same query: one round trip per tile)."""
    start = tile.index * WIDTH
    needed = (start + tile.width) << (HEIGHT * (tile.level or 0))   # leaves the tile spans
    if needed > MAX_TREE:
        raise TileNotFound("该瓦片超出账本可能的范围")
    signed = select(func.max(LedgerCheckpoint.size)).scalar_subquery()
    rows = db.session.execute(
        select(model.index, *columns)
        .where(*where, model.index >= start, model.index < start + tile.width, signed >= needed)
        .order_by(model.index)).all()
    if not rows:
        if needed > published_size():
            raise TileNotFound("最新的已签名检查点尚未覆盖该瓦片")
    if [r[0] for r in rows] != list(range(start, start + tile.width)):
        raise RuntimeError(f"ledger rows missing from the store for {tile.path}")
    return rows


def hash_tile(tile: Tile) -> bytes:
    """The tile's hashes, concatenated: stored nodes at height 8L, no hashing."""
    rows = _read(tile, [LedgerNode.hash], LedgerNode, LedgerNode.level == HEIGHT * tile.level)
    return b"".join(bytes(h) for _, h in rows)


def entry_bundle(tile: Tile) -> bytes:
    """The bundle's entries, each as a big-endian uint16 length and the exact leaf bytes."""
    out = bytearray()
    for index, leaf in _read(tile, [LedgerEntry.leaf], LedgerEntry):
        if len(leaf) > MAX_ENTRY:  # an entry is a few hundred bytes of JSON; never expected
            raise RuntimeError(f"ledger entry {index} is too long for an entry bundle")
        out += struct.pack(">H", len(leaf)) + bytes(leaf)
    return bytes(out)
