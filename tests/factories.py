"""Builders for tests: real accounts with real tokens, beneficiaries and wishes through the API."""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

TOWN = "350505101"            # 界山镇
VILLAGE = "350505101201"      # a village in 界山镇
OTHER_TOWN = "350505105"      # another town of 泉港区
OTHER_VILLAGE = "350505105202"
PASSWORD = "correct horse battery staple"

# The seeded beneficiary's identity: no public or donor-visible response may contain any of it.
SECRET_NAME = "林秀英"
SECRET_ID_NUMBER = "350505195003121230"
SECRET_PHONE = "13805951234"
SECRET_ADDRESS = "泉港区界山镇东张村东张路12号"

_counter = itertools.count(1)


def id_number(birth: str = "19500312", serial: str = "123") -> str:
    """A resident ID number with a valid GB 11643 check character."""
    body = "350505" + birth + serial
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return body + "10X98765432"[sum(int(d) * w for d, w in zip(body, weights)) % 11]


assert id_number() == SECRET_ID_NUMBER, id_number()


@dataclass
class Actor:
    id: str
    role: str
    token: str
    username: str | None = None
    regions: list[str] = field(default_factory=list)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def beneficiary_payload(**overrides: Any) -> dict[str, Any]:
    payload = {
        "real_name": SECRET_NAME,
        "id_number": SECRET_ID_NUMBER,
        "phone": SECRET_PHONE,
        "address": SECRET_ADDRESS,
        "birth_year": 1950,
        "region_code": VILLAGE,
        "alias": "林阿婆",
        "assessment": {"categories": ["elderly", "illness"], "level": "red"},
        "consents": [
            {"kind": "sensitive_data", "given_by": "self", "notice_version": "2026-01"},
            {"kind": "publication", "given_by": "self", "notice_version": "2026-01"},
        ],
    }
    payload.update(overrides)
    return payload


def wish_payload(beneficiary_id: str, **overrides: Any) -> dict[str, Any]:
    payload = {
        "beneficiary_id": beneficiary_id,
        "title": "一台轮椅",
        "story": "阿婆腿脚不便，出门看病需要人背，希望有一台轻便的轮椅。",
        "kind": "goods",
        "item": "轻便折叠轮椅",
        "estimated_value_fen": 80000,
    }
    payload.update(overrides)
    return payload


def open_wishes_through_services(app, n: int) -> list[str]:
    """n open wishes of one new beneficiary, made through the services (no HTTP: fast, with
    every consent and audit row), for tests that need many at once. Returns their ids."""
    import uuid

    from app.auth.service import create_staff
    from app.beneficiaries.service import create_beneficiary
    from app.wishes import service as wishes

    tag = uuid.uuid4().hex[:8]
    with app.app_context():
        caseworker = create_staff(f"cw-{tag}", "caseworker", PASSWORD, [TOWN])
        moderator = create_staff(f"mod-{tag}", "moderator", PASSWORD)
        ben = create_beneficiary(caseworker, beneficiary_payload())
        ids = []
        for _ in range(n):
            wish = wishes.create_wish(caseworker, wish_payload(ben.id))
            wishes.submit_wish(caseworker, wish.id)
            wishes.approve_wish(moderator, wish.id)
            ids.append(wish.id)
        return ids


def deliver_with_photo(app, claim_id: str, *, processed: bool = True) -> str:
    """Deliver a claim as its donor does, with a photo proof (through the service: the photo
    route has its own tests), and, unless `processed=False`, run the media job on it at once, as
    the worker would: a caseworker can confirm a delivery only once its photo is ready. Each call
    sends a different photo (the same one twice would be flagged as reused). Returns the proof id."""
    from app.auth.models import User
    from app.claims.models import Claim
    from app.claims.proofs import process_proof, submit_proof
    from app.extensions import db
    from tests.media.conftest import encode, scene

    photo = encode(scene((160, 120), next(_counter)), "JPEG")
    with app.app_context():
        claim = db.session.get(Claim, claim_id)
        proof = submit_proof(db.session.get(User, claim.donor_id), claim_id, photo, "已送到")
        if processed:
            assert process_proof(proof.id) == "ready"
        return proof.id


class Actors:
    """Make people and things through the real API, the way clients do."""

    def __init__(self, app, client) -> None:
        self.app = app
        self.client = client

    def staff(self, role: str, regions: list[str] | None = None,
              username: str | None = None) -> Actor:
        from app.auth.service import create_staff

        username = username or f"{role}{next(_counter)}"
        if regions is None:
            regions = [TOWN] if role == "caseworker" else []
        with self.app.app_context():
            create_staff(username, role, PASSWORD, regions)
        res = self.client.post("/api/v1/auth/staff",
                               json={"username": username, "password": PASSWORD})
        assert res.status_code == 200, res.get_json()
        body = res.get_json()
        return Actor(id=body["user"]["id"], role=role, token=body["access_token"],
                     username=username, regions=regions)

    def caseworker(self, regions: list[str] | None = None) -> Actor:
        return self.staff("caseworker", regions)

    def moderator(self) -> Actor:
        return self.staff("moderator")

    def admin(self) -> Actor:
        return self.staff("admin")

    def donor(self, name: str | None = None) -> Actor:
        name = name or f"donor{next(_counter)}"
        res = self.client.post("/api/v1/auth/wechat", json={"code": f"dev:{name}"})
        assert res.status_code == 200, res.get_json()
        body = res.get_json()
        return Actor(id=body["user"]["id"], role="donor", token=body["access_token"])

    # --- things ---------------------------------------------------------------------------

    def beneficiary(self, caseworker: Actor, **overrides: Any) -> dict:
        res = self.client.post("/api/v1/beneficiaries", json=beneficiary_payload(**overrides),
                               headers=caseworker.headers)
        assert res.status_code == 201, res.get_json()
        return res.get_json()

    def draft_wish(self, caseworker: Actor, beneficiary_id: str | None = None,
                   **overrides: Any) -> dict:
        if beneficiary_id is None:
            beneficiary_id = self.beneficiary(caseworker)["id"]
        res = self.client.post("/api/v1/wishes", json=wish_payload(beneficiary_id, **overrides),
                               headers=caseworker.headers)
        assert res.status_code == 201, res.get_json()
        return res.get_json()

    def submitted_wish(self, caseworker: Actor, **overrides: Any) -> dict:
        wish = self.draft_wish(caseworker, **overrides)
        res = self.client.post(f"/api/v1/wishes/{wish['id']}/submit", headers=caseworker.headers)
        assert res.status_code == 200, res.get_json()
        return res.get_json()

    def claim(self, donor: Actor, wish_id: str) -> dict:
        import uuid

        res = self.client.post(f"/api/v1/wishes/{wish_id}/claims",
                               headers={**donor.headers, "Idempotency-Key": str(uuid.uuid4())})
        assert res.status_code == 201, res.get_json()
        return res.get_json()

    def fulfil(self, donor: Actor, caseworker: Actor, wish_id: str) -> dict:
        """Claim the wish, deliver it with a processed photo (`deliver_with_photo`) and have the
        caseworker confirm it. Returns the claim."""
        claim = self.claim(donor, wish_id)
        deliver_with_photo(self.app, claim["id"])
        res = self.client.post(f"/api/v1/claims/{claim['id']}/confirm",
                               headers=caseworker.headers)
        assert res.status_code == 200, res.get_json()
        return res.get_json()

    def open_wish(self, caseworker: Actor, moderator: Actor, **overrides: Any) -> dict:
        wish = self.submitted_wish(caseworker, **overrides)
        res = self.client.post(f"/api/v1/wishes/{wish['id']}/approve", headers=moderator.headers)
        assert res.status_code == 200, res.get_json()
        return res.get_json()
