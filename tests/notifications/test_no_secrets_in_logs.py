"""The app secret, access tokens and donors' openids never reach a log line or `last_error`."""
from __future__ import annotations

import logging

from tests.notifications.conftest import APP_SECRET


def test_secret_tokens_and_openids_never_appear_in_logs_or_errors(wechat, scene, actors, caplog):
    caplog.set_level(logging.DEBUG)
    names = ["ok1", "refresh", "refused", "http", "slow", "garbage", "other"]
    outcomes = {"refresh": [40001, 40001], "refused": 43101, "http": "http:502",
                "slow": ["slow"], "garbage": "garbage", "other": 45009}
    for name in names:
        donor = actors.donor(f"secret-{name}")
        scene.consent(donor)
        scene.claim(donor)
        if name in outcomes:
            wechat.subscribe_outcomes[f"dev-secret-{name}"] = outcomes[name]

    first = scene.relay()
    wechat.invalidate_tokens()
    later = max(m.next_attempt_at for m in scene.outbox())
    second = scene.relay(now=later)

    assert first.get("sent") == 1 and first.get("refused") == 1
    assert second.get("sent", 0) >= 1  # the timed-out message goes through on its retry
    assert len(wechat.issued) >= 2  # tokens were fetched, rejected and fetched again
    errors = " ".join(m.last_error or "" for m in scene.outbox())
    assert "errcode 45009" in errors and "http 502" in errors and "not json" in errors
    assert "network: ReadTimeout" in caplog.text  # retried, then sent (its error cleared)
    logged = caplog.text + " ".join(str(r.args) for r in caplog.records)
    assert "wechat rejected the access token" in caplog.text  # the path was really taken
    for secret in [APP_SECRET, *wechat.issued]:
        assert secret not in logged and secret not in errors
    for name in names:
        assert f"dev-secret-{name}" not in logged and f"dev-secret-{name}" not in errors


def test_token_endpoint_error_is_a_retryable_failure_without_the_secret(wechat, scene, actors,
                                                                       caplog):
    caplog.set_level(logging.DEBUG)
    wechat.token_errcode = 40125  # invalid appsecret
    donor = actors.donor()
    scene.consent(donor)
    scene.claim(donor)

    assert scene.relay() == {"pending": 1}

    [message] = scene.outbox()
    assert message.last_error == "stable_token errcode 40125"
    assert wechat.calls("/cgi-bin/message/subscribe/send") == []
    assert APP_SECRET not in caplog.text
