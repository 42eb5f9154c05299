"""Data for the fuzzer to hit: real people with tokens and real objects in every state, made
through the API (tests.factories.Actors), so that paths with ids can reach real rows."""
from __future__ import annotations

import io
import uuid

from PIL import Image

from tests.factories import OTHER_TOWN, OTHER_VILLAGE, Actors, beneficiary_payload


def _photo() -> bytes:
    out = io.BytesIO()
    Image.linear_gradient("L").convert("RGB").resize((320, 240)).save(out, "JPEG")
    return out.getvalue()


def seed(actors: Actors) -> dict:
    """Return {"tokens": {role: token}, "ids": {path parameter name: [real ids]}}."""
    app, client = actors.app, actors.client
    caseworker = actors.caseworker()
    other_caseworker = actors.caseworker([OTHER_TOWN])
    moderator = actors.moderator()
    admin = actors.admin()
    donor, other_donor = actors.donor("fuzz-donor"), actors.donor("fuzz-other")

    wishes = [actors.open_wish(caseworker, moderator) for _ in range(4)]
    drafts = [actors.draft_wish(caseworker), actors.submitted_wish(caseworker)]
    rejected = actors.submitted_wish(caseworker)
    assert client.post(f"/api/v1/wishes/{rejected['id']}/reject", json={"reason": "请补充材料"},
                       headers=moderator.headers).status_code == 200
    other_ben = client.post("/api/v1/beneficiaries",
                            json=beneficiary_payload(region_code=OTHER_VILLAGE, alias="王阿公"),
                            headers=other_caseworker.headers)
    assert other_ben.status_code == 201, other_ben.get_json()
    out_of_scope = actors.open_wish(other_caseworker, moderator,
                                    beneficiary_id=other_ben.get_json()["id"])

    active = actors.claim(donor, wishes[0]["id"])
    delivered = actors.claim(donor, wishes[1]["id"])
    res = client.post(f"/api/v1/claims/{delivered['id']}/proofs",
                      data={"note": "已送到", "photo": (io.BytesIO(_photo()), "p.jpg")},
                      content_type="multipart/form-data",
                      headers={**donor.headers, "Idempotency-Key": str(uuid.uuid4())})
    assert res.status_code == 201, res.get_json()
    from app.claims.proofs import process_proof
    with app.app_context():
        process_proof(res.get_json()["id"])
    fulfilled = actors.fulfil(other_donor, caseworker, wishes[2]["id"])
    foreign = actors.claim(other_donor, out_of_scope["id"])

    from sqlalchemy import select

    from app.extensions import db
    from app.notifications.models import InboxNotification
    with app.app_context():
        notifications = list(db.session.scalars(
            select(InboxNotification.id).where(InboxNotification.user_id == donor.id)))

    # Beneficiaries only bodies name (POST /wishes): not in the path dictionaries, so the run is
    # unlikely to withdraw their consent before it writes wishes for them.
    spare = [actors.beneficiary(caseworker, alias=f"备用{i}")["id"] for i in range(3)]
    ledger_size = client.get("/api/v1/ledger/entries?limit=1").get_json()["tree_size"]
    wish_ids = [w["id"] for w in (*wishes, *drafts, rejected, out_of_scope)]
    return {
        "tokens": {"donor": donor.token, "caseworker": caseworker.token,
                   "moderator": moderator.token, "admin": admin.token},
        "ledger_size": ledger_size,
        "ids": {
            "wish_id": wish_ids,
            "claim_id": [active["id"], delivered["id"], fulfilled["id"], foreign["id"]],
            # wishes the public can see (open, claimed, delivered, fulfilled)
            "published_wish_id": [w["id"] for w in (*wishes, out_of_scope)],
            "body_ben_id": spare,
            "ben_id": sorted({w["beneficiary_id"] for w in (*drafts, rejected)}),
            "user_id": [caseworker.id, other_caseworker.id, moderator.id, donor.id],
            "notification_id": notifications,
            "index": [0],
        },
    }
