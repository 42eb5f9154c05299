"""POST/GET /me/subscriptions: what a donor accepted in wx.requestSubscribeMessage."""
from __future__ import annotations

from tests.notifications.conftest import CREATED, TEMPLATES

EXPIRED = TEMPLATES["WECHAT_TEMPLATE_CLAIM_EXPIRED"]
REMINDER = TEMPLATES["WECHAT_TEMPLATE_CLAIM_REMINDER"]


def _report(client, donor, requested, accepted):
    return client.post("/api/v1/me/subscriptions", headers=donor.headers,
                       json={"template_ids": requested, "accepted": accepted})


def test_get_lists_every_configured_template_with_no_credits_yet(wechat, client, actors):
    donor = actors.donor()
    res = client.get("/api/v1/me/subscriptions", headers=donor.headers)

    assert res.status_code == 200
    items = res.get_json()["items"]
    assert {i["topic"]: i["template_id"] for i in items} == {
        "claim_created": CREATED, "claim_reminder": REMINDER, "claim_expired": EXPIRED,
        "claim_disputed": TEMPLATES["WECHAT_TEMPLATE_CLAIM_DISPUTED"],
        "wish_fulfilled": TEMPLATES["WECHAT_TEMPLATE_WISH_FULFILLED"]}
    assert {i["credits"] for i in items} == {0}


def test_each_accepted_template_adds_one_credit_for_that_donor_only(wechat, scene, client,
                                                                    actors):
    donor, other = actors.donor(), actors.donor()

    res = _report(client, donor, [CREATED, REMINDER, EXPIRED], [CREATED, EXPIRED])
    assert res.status_code == 200
    _report(client, donor, [CREATED], [CREATED])

    credits = scene.credits(donor)
    assert (credits[CREATED], credits[EXPIRED], credits[REMINDER]) == (2, 1, 0)
    assert set(scene.credits(other).values()) == {0}


def test_accepted_template_that_was_not_requested_is_422_and_adds_nothing(wechat, scene, client,
                                                                          actors):
    donor = actors.donor()
    res = _report(client, donor, [REMINDER], [CREATED])

    assert res.status_code == 422
    assert res.get_json()["code"] == "validation_error" and "accepted" in res.get_json()["errors"]
    assert scene.credits(donor)[CREATED] == 0


def test_templates_we_do_not_use_are_ignored(wechat, scene, client, actors):
    donor = actors.donor()
    res = _report(client, donor, ["RETIRED-TEMPLATE", CREATED], ["RETIRED-TEMPLATE", CREATED])

    assert res.status_code == 200
    assert "RETIRED-TEMPLATE" not in {i["template_id"] for i in res.get_json()["items"]}
    assert scene.credits(donor)[CREATED] == 1


def test_malformed_reports_are_422(wechat, client, actors):
    donor = actors.donor()
    for body in ({"template_ids": [], "accepted": []},
                 {"template_ids": ["a", "b", "c", "d"], "accepted": []},
                 {"template_ids": [CREATED]},
                 {"template_ids": [CREATED], "accepted": [CREATED], "credits": 99}):
        res = client.post("/api/v1/me/subscriptions", headers=donor.headers, json=body)
        assert res.status_code == 422, body
        assert res.get_json()["code"] == "validation_error"


def test_staff_have_no_subscriptions(client, actors):
    res = client.post("/api/v1/me/subscriptions", headers=actors.caseworker().headers,
                      json={"template_ids": [CREATED], "accepted": [CREATED]})
    assert res.status_code == 403 and res.get_json()["code"] == "forbidden"
