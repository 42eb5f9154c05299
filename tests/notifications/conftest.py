"""A configured WeChat app (pointed at the fake server) and claims made through the service layer.

Claims are made with `app.claims.service.claim_wish`, the use case the claims view calls; each
claim writes a `claim_created` message to the outbox in its own transaction.
"""
from __future__ import annotations

from dataclasses import dataclass

import pytest

APP_SECRET = "app-secret-Zq7vY2-must-never-be-logged"
TEMPLATES = {
    "WECHAT_TEMPLATE_CLAIM_CREATED": "TMPL-CREATED-0001",
    "WECHAT_TEMPLATE_CLAIM_REMINDER": "TMPL-REMINDER-0002",
    "WECHAT_TEMPLATE_CLAIM_EXPIRED": "TMPL-EXPIRED-0003",
    "WECHAT_TEMPLATE_CLAIM_DISPUTED": "TMPL-DISPUTED-0004",
    "WECHAT_TEMPLATE_WISH_FULFILLED": "TMPL-FULFILLED-0005",
}
CREATED = TEMPLATES["WECHAT_TEMPLATE_CLAIM_CREATED"]


@pytest.fixture
def wechat(app, monkeypatch, fake_wechat):
    """The app as production runs it: an app id, a secret and template ids; a clean fake."""
    fake_wechat.reset()
    settings = {"WECHAT_APP_ID": "wx-notify-test", "WECHAT_APP_SECRET": APP_SECRET,
                "NOTIFY_MAX_ATTEMPTS": 3, "NOTIFY_RETRY_DELAYS": [30, 120], **TEMPLATES}
    for name, value in settings.items():
        monkeypatch.setitem(app.config, name, value)
    yield fake_wechat
    fake_wechat.reset()


@dataclass
class Scene:
    app: object
    client: object
    actors: object

    def __post_init__(self) -> None:
        self.caseworker = self.actors.caseworker()
        self.moderator = self.actors.moderator()

    def wish(self, **overrides) -> dict:
        return self.actors.open_wish(self.caseworker, self.moderator, **overrides)

    def claim(self, donor, wish_id: str | None = None) -> str:
        from app.auth.models import User
        from app.claims.service import claim_wish
        from app.extensions import db

        wish_id = wish_id or self.wish()["id"]
        with self.app.app_context():
            claim = claim_wish(db.session.get(User, donor.id), wish_id)
            return claim.id

    def consent(self, donor, template_id: str = CREATED, times: int = 1) -> dict:
        for _ in range(times):
            res = self.client.post("/api/v1/me/subscriptions", headers=donor.headers,
                                   json={"template_ids": [template_id], "accepted": [template_id]})
            assert res.status_code == 200, res.get_json()
        return self.credits(donor)

    def credits(self, donor) -> dict[str, int]:
        res = self.client.get("/api/v1/me/subscriptions", headers=donor.headers)
        assert res.status_code == 200, res.get_json()
        return {item["template_id"]: item["credits"] for item in res.get_json()["items"]}

    def outbox(self, topic: str = "claim_created") -> list:
        from sqlalchemy import select

        from app.extensions import db
        from app.notifications.models import OutboxMessage

        with self.app.app_context():
            rows = list(db.session.execute(
                select(OutboxMessage).where(OutboxMessage.topic == topic)
                .order_by(OutboxMessage.id)).scalars())
            db.session.expunge_all()
            return rows

    def relay(self, **kwargs) -> dict:
        from app.notifications.relay import relay_outbox

        with self.app.app_context():
            return relay_outbox(**kwargs)


@pytest.fixture
def scene(app, client, actors):
    return Scene(app, client, actors)
