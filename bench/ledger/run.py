"""Ledger Merkle tree benchmark: our MemoryTree against pymerkle's InmemoryTree, side by side.

Measures, at 10^3, 10^4, 10^5 and 10^6 entries: append throughput (entries/s, building the tree
from empty), inclusion-proof time and consistency-proof time (median µs over random challenges
against the full tree), and prints the ratios and how proof time grows with log2(n).

    python -m bench.ledger.run            # up to 10^6 entries (about 1-2 minutes)
    python -m bench.ledger.run --quick    # stops at 10^5
    python -m bench.ledger.run --quick --db-only   # only the PostgreSQL log (no pymerkle needed)

pymerkle is GPL, so it is a bench-only dependency and never in requirements.txt; install it into
the virtualenv by hand: `pip install pymerkle` (measured with 7.0.0).

Like for like: pymerkle is built with algorithm="sha256" and its default security mode, which
prefixes leaves with 0x00 and nodes with 0x01 and splits at the largest power of two below n - the
RFC 6962 tree, same as ours. The script checks that both trees give the same root, and the same
inclusion path, before timing. Differences that remain: pymerkle counts leaves from 1, its proofs
carry the leaf hash and a path "rule" besides the sibling hashes, and it keeps an LRU cache of
subtree roots that it fills lazily, so its first proofs on a big tree are slower (reported apart as
"cold"); we store every completed perfect subtree at append time, so ours need no warm-up.

Unless --no-db, the database-backed log (app.ledger.log) is measured too, on a throwaway
PostgreSQL database (BENCH_PG_URL, default postgresql://postgres@127.0.0.1:5432/postgres;
BENCH_REDIS_URL) - see bench/ledger/db.py for how.
"""
from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root, as a script too

from app.ledger import merkle  # noqa: E402

try:
    from pymerkle import InmemoryTree
except ImportError:  # pragma: no cover - depends on the machine
    InmemoryTree = None

CHALLENGES = 1000
RESULTS = Path(__file__).resolve().parents[1] / "results"


def _entries(n: int) -> list[bytes]:
    return [b'{"kind":"in_kind_fulfilment","i":%d,"value_fen":80000}' % i for i in range(n)]


def _append(tree_append, data: list[bytes]) -> float:
    start = time.perf_counter()
    for entry in data:
        tree_append(entry)
    return len(data) / (time.perf_counter() - start)


def _median_us(fn, args: list[tuple]) -> tuple[float, float]:
    """(cold µs of the first call, median µs over the rest)."""
    times = []
    for a in args:
        t0 = time.perf_counter()
        fn(*a)
        times.append((time.perf_counter() - t0) * 1e6)
    return times[0], statistics.median(times[1:])


def measure(n: int, rng: random.Random) -> dict:
    data = _entries(n)
    ours = merkle.MemoryTree()
    theirs = InmemoryTree(algorithm="sha256")
    ours_aps = _append(ours.append, data)
    theirs_aps = _append(theirs.append_entry, data)
    if ours.root() != theirs.get_root():
        raise SystemExit(f"roots differ at n={n}: the trees are not hashing the same way")

    indexes = [rng.randrange(n) for _ in range(CHALLENGES + 1)]
    firsts = [rng.randrange(1, n + 1) for _ in range(CHALLENGES + 1)]
    inc_ours = _median_us(ours.inclusion_proof, [(i, n) for i in indexes])
    inc_theirs = _median_us(theirs.prove_inclusion, [(i + 1, n) for i in indexes])
    con_ours = _median_us(ours.consistency_proof, [(f, n) for f in firsts])
    con_theirs = _median_us(theirs.prove_consistency, [(f, n) for f in firsts])
    # Spot check that the same challenge gives the same sibling hashes on both sides
    # (pymerkle's path also holds the leaf itself, first).
    i = indexes[0]
    assert ours.inclusion_proof(i, n) == theirs.prove_inclusion(i + 1, n).path[1:], "proofs differ"
    proof_len = statistics.mean(len(ours.inclusion_proof(i, n)) for i in indexes[:50])
    return {
        "n": n, "append_ours": ours_aps, "append_pymerkle": theirs_aps,
        "inclusion_ours_us": inc_ours[1], "inclusion_pymerkle_us": inc_theirs[1],
        "inclusion_pymerkle_cold_us": inc_theirs[0],
        "consistency_ours_us": con_ours[1], "consistency_pymerkle_us": con_theirs[1],
        "consistency_pymerkle_cold_us": con_theirs[0], "proof_hashes": proof_len,
    }


def _table(rows: list[dict]) -> str:
    head = (f"{'size':>9} | {'append/s ours':>13} {'pymerkle':>9} {'ratio':>6} | "
            f"{'incl µs ours':>12} {'pymerkle':>9} {'ratio':>6} | "
            f"{'cons µs ours':>12} {'pymerkle':>9} {'ratio':>6} | {'hashes':>6} {'µs/log2n':>8}")
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r['n']:>9,} | {r['append_ours']:>13,.0f} {r['append_pymerkle']:>9,.0f} "
            f"{r['append_ours'] / r['append_pymerkle']:>5.2f}x | "
            f"{r['inclusion_ours_us']:>12.1f} {r['inclusion_pymerkle_us']:>9.1f} "
            f"{r['inclusion_pymerkle_us'] / r['inclusion_ours_us']:>5.2f}x | "
            f"{r['consistency_ours_us']:>12.1f} {r['consistency_pymerkle_us']:>9.1f} "
            f"{r['consistency_pymerkle_us'] / r['consistency_ours_us']:>5.2f}x | "
            f"{r['proof_hashes']:>6.1f} {r['inclusion_ours_us'] / math.log2(r['n']):>8.2f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="stop at 10^5 entries")
    parser.add_argument("--no-db", action="store_true",
                        help="skip the database-backed log (needs PostgreSQL; bench/ledger/db.py)")
    parser.add_argument("--db-only", action="store_true",
                        help="only the database-backed log: appends and proofs from PostgreSQL "
                             "(no in-memory trees, no pymerkle)")
    parser.add_argument("--appends", type=int, default=None,
                        help="database appends to time, one transaction each (default 1000)")
    args = parser.parse_args(argv)
    if args.db_only and args.no_db:
        parser.error("--db-only and --no-db exclude each other")
    if not args.db_only and InmemoryTree is None:
        sys.exit("pymerkle is not installed: `pip install pymerkle` into the virtualenv "
                 "(bench-only, GPL; never add it to requirements.txt), or run --db-only")
    sizes = [10**3, 10**4, 10**5] + ([] if args.quick else [10**6])
    rng = random.Random(6962)
    rows = []
    if not args.db_only:
        measure(1000, random.Random(0))  # warm-up: first-call costs land in no row
        for n in sizes:
            t0 = time.perf_counter()
            rows.append(measure(n, rng))
            print(f"  n={n:,} measured in {time.perf_counter() - t0:.1f}s", file=sys.stderr,
                  flush=True)
        print("ratios: append = ours/pymerkle (higher is better for us); "
              "proofs = pymerkle/ours (higher is better for us)")
        print(_table(rows))
        print("pymerkle cold first proof (µs, fills its subtree cache): "
              + ", ".join(f"n={r['n']:,}: incl {r['inclusion_pymerkle_cold_us']:,.0f} / "
                          f"cons {r['consistency_pymerkle_cold_us']:,.0f}" for r in rows))
    results = {"memory": rows}
    if not args.no_db:
        from bench.ledger import db as dbbench

        t0 = time.perf_counter()
        db_rows = dbbench.measure(sizes, rng, _median_us, *dbbench.default_urls(),
                                  appends=args.appends or dbbench.APPENDS)
        print(f"  database log measured in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
        results["database"] = db_rows
        print("\ndatabase-backed app.ledger.log on PostgreSQL: append "
              f"{db_rows[0]['db_append']:,.0f} entries/s ({db_rows[0]['appends']:,} appends, one "
              f"transaction each; {db_rows[0]['append_cpu_ms']:.2f} ms CPU of this process an "
              "append; larger logs bulk-loaded with COPY)")
        last = db_rows[-1]
        print(f"append on the log of {last['n']:,}: {last['db_append_at_n']:,.0f} entries/s "
              f"({last['appends_at_n']:,} appends; {last['append_cpu_ms_at_n']:.2f} ms CPU an "
              "append)")
        if rows:
            print(f"{'size':>9} | {'incl µs':>9} {'vs memory':>9} | {'cons µs':>9} "
                  f"{'vs memory':>9}")
            for d, m in zip(db_rows, rows):
                print(f"{d['n']:>9,} | {d['db_inclusion_us']:>9.0f} "
                      f"{d['db_inclusion_us'] / m['inclusion_ours_us']:>8.0f}x | "
                      f"{d['db_consistency_us']:>9.0f} "
                      f"{d['db_consistency_us'] / m['consistency_ours_us']:>8.0f}x")
        else:
            print(f"{'size':>9} | {'incl µs':>9} | {'cons µs':>9}")
            for d in db_rows:
                print(f"{d['n']:>9,} | {d['db_inclusion_us']:>9.0f} | "
                      f"{d['db_consistency_us']:>9.0f}")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"ledger-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(results, indent=2))
    print(f"raw results: {out.relative_to(Path.cwd()) if out.is_relative_to(Path.cwd()) else out}")


if __name__ == "__main__":
    main()
