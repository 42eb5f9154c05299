"""bench/site: the public site's pages under gunicorn, against a bare endpoint of the same size.

One command, from the repository root with the virtualenv active:

    python bench/site/run.py            # ~4 min: 100,000 wishes, 2 rounds x 10 s per page
    python bench/site/run.py --quick    # ~1 min: 1 round x 3 s

The set-up of bench/feed (same options, same throwaway database with 100,000 wishes, same
gunicorn and wrk settings, same bare Flask yardstick serving a captured body of the same size),
plus an open ledger of one entry per fulfilled wish, bulk-loaded with COPY as app.ledger.log would
write it. Measured: the wish wall (default and filtered), a wish page (100 random published
wishes, fulfilled ones among them) and the ledger's first page. Goal: each at least 0.5 of its
bare endpoint. Raw results go to bench/results/. Needs wrk (`apt-get install -y wrk`); figures
and what they led to are in bench/README.md.
"""
from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root

from app.ledger import merkle  # noqa: E402
from app.ledger.entries import canonical  # noqa: E402
from bench import harness  # noqa: E402
from bench.feed import run as feed  # noqa: E402

WALL = "/"
WALL_FILTERED = "/?town=350505101&kind=goods"
LEDGER = "/ledger"
WISH_PAGES = 100


def fill_ledger(url: str) -> int:
    """One in-kind fulfilment entry per fulfilled wish (the rows log.append would write)."""
    with psycopg.connect(url) as conn:
        wishes = conn.execute(
            "SELECT id, coalesce(item, title), estimated_value_fen, region_code, fulfilled_at "
            "FROM wishes WHERE status = 'fulfilled' ORDER BY fulfilled_at NULLS FIRST, id").fetchall()
    leaves = [canonical({
        "kind": "in_kind_fulfilment", "wish_id": wish_id, "item": item, "value_fen": value,
        "town": region[:9], "donor": "爱心人士",
        "at": (at.strftime("%Y-%m-%dT%H:%M:%SZ") if at else "2026-01-01T00:00:00Z")})
        for wish_id, item, value, region, at in wishes]
    tree = merkle.MemoryTree()
    for leaf in leaves:
        tree.append(leaf)
    with psycopg.connect(url) as conn:
        with conn.cursor().copy("COPY ledger_entries (index, leaf, leaf_hash, kind, source_type, "
                                "source_id, created_at) FROM STDIN") as cp:
            for i, leaf in enumerate(leaves):
                cp.write_row((i, leaf, tree.get_node(0, i), "in_kind_fulfilment", "bench",
                              f"b{i}", "2026-01-01T00:00:00Z"))
        with conn.cursor().copy("COPY ledger_nodes (level, index, hash) FROM STDIN") as cp:
            for i in range(len(leaves)):
                cp.write_row((0, i, tree.get_node(0, i)))
                for level, j in merkle.completed_by(i):
                    cp.write_row((level, j, tree.get_node(level, j)))
        conn.execute("ANALYZE")
    return len(leaves)


def wish_pages(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        ids = [row[0] for row in conn.execute(
            "SELECT id FROM wishes WHERE status IN ('open', 'claimed', 'delivered', 'fulfilled')"
            " AND NOT hidden ORDER BY random() LIMIT %s", (WISH_PAGES,))]
    if not ids:
        raise harness.BenchError("no published wish in the database")
    return [f"/w/{wish_id}" for wish_id in ids]


def main(argv: list[str] | None = None) -> int:
    args = feed.parse_args(argv)
    try:
        harness.need_wrk()
        harness.sigterm_as_interrupt()
        work = Path(tempfile.mkdtemp(prefix="wxy-bench-site-"))
        try:
            with harness.throwaway_database(args.pg, "wxy_bench", keep=args.keep) as url:
                if not args.database:
                    feed.prepare(url, args)
                    print(f"ledger: {fill_ledger(url)} entries")
                url = args.database or url
                endpoints = [("wish wall", "wall", [WALL]),
                             ("wish wall (town+kind)", "wall_filtered", [WALL_FILTERED]),
                             (f"wish page ({WISH_PAGES} random)", "wish", wish_pages(url)),
                             ("ledger, first page", "ledger", [LEDGER])]
                measured = feed.measure(args, url, work, endpoints)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        feed.report(args, measured, name="site")
    except harness.BenchError as exc:
        print(f"bench/site: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nbench/site: interrupted; servers stopped", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
