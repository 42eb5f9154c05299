import pytest

from tests.site.world import seed


@pytest.fixture
def site(app, client, actors, fake_wechatpay):
    """The small public world of tests/site/world.py."""
    return seed(app, client, actors, fake_wechatpay)
