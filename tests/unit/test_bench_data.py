"""The benchmarks' generated 泉港区 lies in the towns the app can name (app/divisions.py)."""
from __future__ import annotations

import random

from app.divisions import TOWNS, name_of, town_name
from bench.feed import populate


def test_bench_places_every_wish_in_a_town_of_the_division_table():
    rng = random.Random(1)
    towns = {populate._village(rng)[:9] for _ in range(2000)}

    assert towns == set(TOWNS)
    for code in towns:
        assert "（" not in town_name(code), code  # a name, not 泉港区（<bare code>）
    assert populate.TOWNS["350505106"] == name_of("350505106") == "涂岭镇"
