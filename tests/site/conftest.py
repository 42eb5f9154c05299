import pytest

from tests.site.world import seed


@pytest.fixture(autouse=True)
def _fresh_figures(request, monkeypatch):
    """/stats caches its totals and series per process; each test here sees its own world."""
    if "app" in request.fixturenames:
        monkeypatch.setitem(request.getfixturevalue("app").config, "STATS_CACHE_SECONDS", 0)


@pytest.fixture
def site(app, client, actors, fake_wechatpay):
    """The small public world of tests/site/world.py."""
    return seed(app, client, actors, fake_wechatpay)
