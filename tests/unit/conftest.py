"""The unit tier: rules that are data, checked without the app, a database or Redis.

`pytest tests/unit` runs them alone in well under a second; they run in the whole suite too.
Every test here is marked `unit` (`pytest -m unit` picks them out of a wider run). Nothing here
may ask for the `app` or `client` fixtures.
"""
from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).parent


def pytest_collection_modifyitems(config, items):
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.unit)
            if {"app", "client"} & set(getattr(item, "fixturenames", ())):
                raise pytest.UsageError(f"{item.nodeid}: a unit test may not use the app")
