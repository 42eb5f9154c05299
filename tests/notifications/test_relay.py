"""The outbox relay against the fake WeChat server, on the real database and Redis."""
from __future__ import annotations

import re
import threading
from datetime import datetime, timedelta, timezone

from tests.notifications.conftest import CREATED

TOKEN_PATH, SEND_PATH = "/cgi-bin/stable_token", "/cgi-bin/message/subscribe/send"


def _later(seconds: float) -> datetime:
    return datetime.now(timezone.utc) + timedelta(seconds=seconds)


def test_message_is_sent_with_template_openid_page_and_data_and_spends_a_credit(
        wechat, scene, actors):
    donor = actors.donor("alice")
    title = "为村小学的孩子们添置一批冬季校服和保暖手套共计四十套"  # longer than a `thing` allows
    assert scene.consent(donor)[CREATED] == 1
    claim_id = scene.claim(donor, scene.wish(title=title)["id"])

    assert scene.relay() == {"sent": 1}

    [sent] = wechat.delivered
    assert sent["touser"] == "dev-alice"
    assert sent["template_id"] == CREATED
    assert sent["page"] == f"pages/claims/detail?id={claim_id}"
    assert set(sent["data"]) == {"thing1", "time2", "thing3"}
    thing1 = sent["data"]["thing1"]["value"]
    assert len(thing1) <= 20 and thing1.endswith("…") and title.startswith(thing1[:-1])
    assert re.fullmatch(r"\d{4}年\d{2}月\d{2}日 \d{2}:\d{2}", sent["data"]["time2"]["value"])
    [message] = scene.outbox()
    assert (message.status, message.attempts, message.last_error) == ("sent", 1, None)
    assert message.sent_at is not None
    assert scene.credits(donor)[CREATED] == 0


def test_access_token_is_fetched_once_and_cached_across_sends(wechat, scene, actors):
    donors = [actors.donor() for _ in range(3)]
    for donor in donors:
        scene.consent(donor)
        scene.claim(donor)

    assert scene.relay() == {"sent": 3}
    later = actors.donor()
    scene.consent(later)
    scene.claim(later)
    assert scene.relay() == {"sent": 1}

    [token_call] = wechat.calls(TOKEN_PATH)
    assert token_call["body"] == {"grant_type": "client_credential", "appid": "wx-notify-test",
                                  "secret": scene.app.config["WECHAT_APP_SECRET"]}
    sends = wechat.calls(SEND_PATH)
    assert len(sends) == 4
    assert {s["query"]["access_token"] for s in sends} == {wechat.issued[0]}


def test_rejected_token_is_dropped_refreshed_and_the_send_retried_once(wechat, scene, actors):
    first, second = actors.donor(), actors.donor()
    for donor in (first, second):
        scene.consent(donor)
    scene.claim(first)
    assert scene.relay() == {"sent": 1}

    wechat.invalidate_tokens()  # e.g. expired early, or refreshed by another app server
    scene.claim(second)
    assert scene.relay() == {"sent": 1}

    assert len(wechat.calls(TOKEN_PATH)) == 2
    tokens = [s["query"]["access_token"] for s in wechat.calls(SEND_PATH)]
    assert tokens == [wechat.issued[0], wechat.issued[0], wechat.issued[1]]
    assert len(wechat.delivered) == 2


def test_token_rejected_again_after_refresh_is_retried_later_not_looped(wechat, scene, actors):
    donor = actors.donor("tokens")
    scene.consent(donor)
    scene.claim(donor)
    wechat.subscribe_outcomes["dev-tokens"] = [42001, 42001]

    assert scene.relay() == {"pending": 1}

    assert len(wechat.calls(SEND_PATH)) == 2  # the first go and exactly one retry
    [message] = scene.outbox()
    assert (message.status, message.attempts, message.last_error) == ("pending", 1,
                                                                      "errcode 42001")
    assert scene.credits(donor)[CREATED] == 1


def test_refusal_43101_is_recorded_zeroes_credits_and_is_never_retried(wechat, scene, actors):
    donor = actors.donor("refuser")
    scene.consent(donor, times=3)
    scene.claim(donor)
    wechat.subscribe_outcomes["dev-refuser"] = 43101

    assert scene.relay() == {"refused": 1}
    assert scene.relay(now=_later(86400)) == {}

    assert len(wechat.calls(SEND_PATH)) == 1
    [message] = scene.outbox()
    assert message.status == "refused" and "43101" in message.last_error
    assert scene.credits(donor)[CREATED] == 0


def test_without_credit_the_message_is_no_credit_and_wechat_is_not_called(wechat, scene, actors):
    donor = actors.donor()
    other_template = scene.app.config["WECHAT_TEMPLATE_WISH_FULFILLED"]
    scene.consent(donor, other_template)  # a consent for another topic does not count
    scene.claim(donor)

    assert scene.relay() == {"no_credit": 1}

    assert wechat.requests == []
    [message] = scene.outbox()
    assert (message.status, message.attempts) == ("no_credit", 0)
    assert scene.credits(donor)[other_template] == 1


def test_http_500_is_retried_with_growing_backoff_then_failed_at_the_limit(wechat, scene, actors):
    donor = actors.donor("flaky")
    scene.consent(donor)
    scene.claim(donor)
    wechat.subscribe_outcomes["dev-flaky"] = "http:500"

    start = datetime.now(timezone.utc)
    assert scene.relay() == {"pending": 1}
    [message] = scene.outbox()
    assert (message.attempts, message.last_error) == (1, "http 500")
    first_wait = (message.next_attempt_at - start).total_seconds()
    assert 30 <= first_wait <= 30 * 1.25 + 5

    assert scene.relay() == {}  # not due yet: nothing is sent before its time
    assert len(wechat.calls(SEND_PATH)) == 1

    second_at = message.next_attempt_at + timedelta(seconds=1)
    assert scene.relay(now=second_at) == {"pending": 1}
    [message] = scene.outbox()
    second_wait = (message.next_attempt_at - second_at).total_seconds()
    assert message.attempts == 2 and 120 <= second_wait <= 120 * 1.25

    assert scene.relay(now=message.next_attempt_at + timedelta(seconds=1)) == {"failed": 1}
    assert scene.relay(now=_later(7 * 86400)) == {}
    [message] = scene.outbox()
    assert message.status == "failed" and message.attempts == 3
    assert message.last_error == "gave up after 3 attempts: http 500"
    assert len(wechat.calls(SEND_PATH)) == 3
    assert scene.credits(donor)[CREATED] == 1  # nothing was delivered, so nothing was spent


def test_timeout_is_retried_later_and_the_retry_delivers(wechat, scene, actors):
    donor = actors.donor("slowpoke")
    scene.consent(donor)
    scene.claim(donor)
    wechat.subscribe_outcomes["dev-slowpoke"] = ["slow"]

    assert scene.relay() == {"pending": 1}
    [message] = scene.outbox()
    assert message.last_error == "network: ReadTimeout"

    assert scene.relay(now=message.next_attempt_at) == {"sent": 1}
    [message] = scene.outbox()
    assert (message.status, message.attempts) == ("sent", 2)
    assert scene.credits(donor)[CREATED] == 0


def test_unconfigured_template_is_recorded_as_not_sent_without_calling_wechat(
        wechat, scene, actors, monkeypatch):
    monkeypatch.setitem(scene.app.config, "WECHAT_TEMPLATE_CLAIM_CREATED", "")
    donor = actors.donor()
    scene.claim(donor)

    assert scene.relay() == {"failed": 1}

    [message] = scene.outbox()
    assert message.last_error == "template not configured: WECHAT_TEMPLATE_CLAIM_CREATED is empty"
    assert wechat.requests == []


def test_job_run_twice_sends_each_message_once(wechat, scene, actors, app):
    from workers.jobs import relay_outbox

    donor = actors.donor()
    scene.consent(donor, times=2)
    scene.claim(donor)

    with app.app_context():
        assert relay_outbox() == {"sent": 1}
    with app.app_context():
        assert relay_outbox() == {}

    assert len(wechat.delivered) == 1
    assert scene.credits(donor)[CREATED] == 1


def test_two_relays_at_once_send_each_message_once(wechat, scene, actors, app, needs_postgres):
    donors = [actors.donor() for _ in range(6)]
    for donor in donors:
        scene.consent(donor)
        scene.claim(donor)
    wechat.send_delay = 0.05  # each send holds its row for a while: the other relay must skip it
    results, barrier = [], threading.Barrier(2)

    def run():
        barrier.wait()
        results.append(scene.relay())

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert sum(r.get("sent", 0) for r in results) == 6
    assert all(r for r in results), f"both relays should have sent some: {results}"
    assert len(wechat.delivered) == 6
    assert len({d["touser"] for d in wechat.delivered}) == 6
    assert [m.status for m in scene.outbox()] == ["sent"] * 6


def test_two_relays_cannot_both_spend_a_donors_last_credit(wechat, scene, actors, app,
                                                           needs_postgres):
    donor = actors.donor()
    scene.consent(donor)  # one consent, two messages for the same template
    scene.claim(donor)
    scene.claim(donor)
    wechat.send_delay = 0.1
    results, barrier = [], threading.Barrier(2)

    def run():
        barrier.wait()
        results.append(scene.relay(batch=1))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert sorted(m.status for m in scene.outbox()) == ["no_credit", "sent"]
    assert len(wechat.calls(SEND_PATH)) == 1
    assert scene.credits(donor)[CREATED] == 0


def test_the_periodic_ticker_rings_the_relay_on_the_notifications_queue(app, wechat):
    from app.queue import get_queue
    from app.redis_conn import get_redis
    from workers import PERIODIC, tick_periodic

    with app.app_context():
        connection = get_redis()
        assert "notify-relay" in tick_periodic(connection, app.config, PERIODIC)
        assert "notify-relay" not in tick_periodic(connection, app.config, PERIODIC)
        jobs = get_queue("notifications", connection).get_jobs()
    assert [job.func_name for job in jobs] == ["workers.jobs.relay_outbox"]


def test_a_message_that_breaks_the_relay_is_retried_and_does_not_hold_up_the_others(
        wechat, scene, actors, app):
    from app.extensions import db
    from app.notifications.service import notify_donor

    broken, fine = actors.donor(), actors.donor()
    for donor in (broken, fine):
        scene.consent(donor)
    with app.app_context():  # a payload from an older release, without the fields we need now
        notify_donor(broken.id, "claim_created", {"claim_id": "clm_old"}, "old-format:1")
        db.session.commit()
    scene.claim(fine)

    assert scene.relay() == {"pending": 1, "sent": 1}

    by_user = {m.user_id: m for m in scene.outbox()}
    assert by_user[fine.id].status == "sent"
    assert by_user[broken.id].status == "pending"
    assert by_user[broken.id].last_error == "internal: KeyError"
    assert by_user[broken.id].attempts == 1
    assert scene.credits(broken)[CREATED] == 1
