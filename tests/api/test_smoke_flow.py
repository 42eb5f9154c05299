"""The core flow end to end: a caseworker records and posts, a moderator approves, anyone finds it."""
from tests.factories import SECRET_NAME


def test_caseworker_posts_moderator_approves_public_finds_it(client, actors):
    caseworker = actors.caseworker()
    moderator = actors.moderator()
    wish = actors.open_wish(caseworker, moderator)
    assert wish["status"] == "open"

    feed = client.get("/api/v1/wishes")
    assert feed.status_code == 200
    items = feed.get_json()["items"]
    assert [w["id"] for w in items] == [wish["id"]]
    card = items[0]
    assert set(card) == {"id", "title", "story", "kind", "item", "estimated_value_fen", "level",
                         "categories", "alias", "age_band", "region_code", "status",
                         "published_at", "due_at", "fulfilled_at"}
    assert card["region_code"] == "350505101"
    assert card["published_at"].endswith("Z")
    assert SECRET_NAME not in feed.get_data(as_text=True)

    one = client.get(f"/api/v1/wishes/{wish['id']}")
    assert one.status_code == 200
    assert one.get_json() == card
