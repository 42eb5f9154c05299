"""Photo proof through the HTTP API: upload, the worker's re-encode, signed links, bad files."""
from __future__ import annotations

import io
import uuid
import zipfile

import pytest
from PIL import Image
from sqlalchemy import select, update

from app.claims.models import Claim, Proof
from app.extensions import db
from app.notifications.models import InboxNotification
from tests.media.conftest import encode, exif_with, png_declaring, scene


@pytest.fixture
def staff(actors):
    return actors.caseworker(), actors.moderator()


def _claimed(client, actors, staff):
    donor = actors.donor()
    wish = actors.open_wish(*staff)
    res = client.post(f"/api/v1/wishes/{wish['id']}/claims",
                      headers={**donor.headers, "Idempotency-Key": str(uuid.uuid4())})
    assert res.status_code == 201
    return donor, wish, res.get_json()


def _upload(client, donor, claim_id, data: bytes, name="photo.jpg", key=None, note="已送到"):
    return client.post(
        f"/api/v1/claims/{claim_id}/proofs",
        data={"note": note, "photo": (io.BytesIO(data), name)},
        content_type="multipart/form-data",
        headers={**donor.headers, "Idempotency-Key": key or str(uuid.uuid4())})


def _process(app, proof_id):
    from app.claims.proofs import process_proof

    with app.app_context():
        return process_proof(proof_id)


def _gps_photo(seed=0) -> bytes:
    return encode(scene((900, 600), seed), "JPEG", exif=exif_with(orientation=6, gps=True))


def test_upload_stops_the_clock_and_the_worker_stores_a_clean_upright_copy(
        client, actors, staff, app):
    donor, wish, claim = _claimed(client, actors, staff)
    res = _upload(client, donor, claim["id"], _gps_photo())
    assert res.status_code == 201, res.get_json()
    proof = res.get_json()
    assert proof["status"] == "processing" and proof["image_url"] is None
    got = client.get(f"/api/v1/claims/{claim['id']}", headers=donor.headers).get_json()
    assert got["status"] == "delivered" and got["delivered_at"]
    assert client.get(f"/api/v1/wishes/{wish['id']}").get_json()["status"] == "delivered"

    assert _process(app, proof["id"]) == "ready"
    assert _process(app, proof["id"]) == "ready"  # a second run changes nothing
    listed = client.get(f"/api/v1/claims/{claim['id']}/proofs", headers=donor.headers).get_json()
    assert [p["status"] for p in listed] == ["ready"]
    image = client.get(listed[0]["image_url"])
    assert image.status_code == 200 and image.mimetype == "image/jpeg"
    assert image.headers["X-Content-Type-Options"] == "nosniff"
    served = image.get_data()
    assert b"Exif" not in served and b"GPS" not in served
    with Image.open(io.BytesIO(served)) as im:
        assert im.size == (600, 900)  # orientation 6 applied: portrait now
        assert not im.getexif()
    thumb = client.get(listed[0]["thumb_url"])
    with Image.open(io.BytesIO(thumb.get_data())) as im:
        assert max(im.size) == 320
    with app.app_context():
        note = db.session.execute(select(InboxNotification)).scalar_one()
        assert note.topic == "proof_submitted" and note.user_id == staff[0].id
        assert db.session.get(Proof, proof["id"]).upload_key is None


def test_media_link_edited_or_without_signature_is_404(client, actors, staff, app):
    donor, _, claim = _claimed(client, actors, staff)
    proof = _upload(client, donor, claim["id"], _gps_photo()).get_json()
    _process(app, proof["id"])
    url = client.get(f"/api/v1/claims/{claim['id']}/proofs",
                     headers=donor.headers).get_json()[0]["image_url"]
    assert client.get(url.split("?")[0]).status_code == 404
    assert client.get(url.replace("full.jpg", "thumb.jpg")).status_code == 404
    assert client.get(url[:-2] + ("AA" if not url.endswith("AA") else "BB")).status_code == 404


def test_same_key_replays_the_upload_and_makes_one_proof(client, actors, staff, app):
    donor, _, claim = _claimed(client, actors, staff)
    data = _gps_photo()
    first = _upload(client, donor, claim["id"], data, key="proof-1")
    second = _upload(client, donor, claim["id"], data, key="proof-1")
    assert first.status_code == second.status_code == 201
    assert second.headers["Idempotent-Replayed"] == "true"
    with app.app_context():
        assert len(db.session.execute(select(Proof)).scalars().all()) == 1


def _confirm(client, caseworker, claim_id):
    return client.post(f"/api/v1/claims/{claim_id}/confirm", headers=caseworker.headers)


def test_the_caseworker_can_confirm_only_once_the_photo_is_processed(client, actors, staff, app):
    caseworker = staff[0]
    donor, wish, claim = _claimed(client, actors, staff)
    proof = _upload(client, donor, claim["id"], _gps_photo()).get_json()
    assert proof["status"] == "processing"

    early = _confirm(client, caseworker, claim["id"])
    assert early.status_code == 409, early.get_json()
    assert early.mimetype == "application/problem+json"
    body = early.get_json()
    assert body["code"] == "proof_not_ready" and body["title"] == "送达照片尚未就绪"
    assert "处理中" in body["detail"]
    got = client.get(f"/api/v1/claims/{claim['id']}", headers=caseworker.headers).get_json()
    assert got["status"] == "delivered"
    assert client.get(f"/api/v1/wishes/{wish['id']}").get_json()["status"] == "delivered"
    assert client.get("/api/v1/ledger/entries").get_json()["items"] == []

    assert _process(app, proof["id"]) == "ready"
    res = _confirm(client, caseworker, claim["id"])
    assert res.status_code == 200 and res.get_json()["status"] == "confirmed"
    assert client.get(f"/api/v1/wishes/{wish['id']}").get_json()["status"] == "fulfilled"


def test_a_photo_that_could_not_be_processed_is_disputed_not_confirmed(client, actors, staff,
                                                                        app):
    """The confirm looks at the photo of this delivery, the latest: a ready photo of a delivery
    disputed earlier does not stand in for it."""
    from app.media.storage import get_storage

    caseworker = staff[0]
    donor, _, claim = _claimed(client, actors, staff)
    lost = _upload(client, donor, claim["id"], _gps_photo(1)).get_json()
    with app.app_context():
        get_storage().delete(db.session.get(Proof, lost["id"]).upload_key)  # the file is lost
    assert _process(app, lost["id"]) == "failed"
    res = _confirm(client, caseworker, claim["id"])
    assert res.status_code == 409 and res.get_json()["code"] == "proof_not_ready"
    assert "处理失败" in res.get_json()["detail"]

    dispute = client.post(f"/api/v1/claims/{claim['id']}/dispute", json={"reason": "照片打不开"},
                          headers=caseworker.headers)
    assert dispute.status_code == 200 and dispute.get_json()["status"] == "active"
    first = _upload(client, donor, claim["id"], _gps_photo(2)).get_json()
    assert _process(app, first["id"]) == "ready"
    dispute = client.post(f"/api/v1/claims/{claim['id']}/dispute", json={"reason": "看不清物品"},
                          headers=caseworker.headers)
    assert dispute.status_code == 200
    second = _upload(client, donor, claim["id"], _gps_photo(3)).get_json()
    res = _confirm(client, caseworker, claim["id"])
    assert res.status_code == 409 and res.get_json()["code"] == "proof_not_ready"
    assert _process(app, second["id"]) == "ready"
    assert _confirm(client, caseworker, claim["id"]).status_code == 200


def test_proof_on_someone_elses_claim_is_404(client, actors, staff):
    _, _, claim = _claimed(client, actors, staff)
    res = _upload(client, actors.donor(), claim["id"], _gps_photo())
    assert res.status_code == 404


def test_proof_on_an_expired_claim_is_409(client, actors, staff, app):
    from datetime import datetime, timedelta, timezone

    from app.claims.service import sweep_due_claims

    donor, _, claim = _claimed(client, actors, staff)
    with app.app_context():
        sweep_due_claims(now=datetime.now(timezone.utc) + timedelta(days=3))
    res = _upload(client, donor, claim["id"], _gps_photo())
    assert res.status_code == 409 and res.get_json()["code"] == "claim_expired"


def _zip_bytes() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("secret.txt", "hidden payload")
    return out.getvalue()


def _truncated_jpeg() -> bytes:
    data = encode(scene((800, 600)), "JPEG", quality=90)
    return data[: len(data) // 2]


def _animated_gif() -> bytes:
    frames = [scene((64, 64), seed) for seed in range(3)]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:])
    return out.getvalue()


def _animated_webp() -> bytes:
    frames = [scene((64, 64), seed) for seed in range(3)]
    out = io.BytesIO()
    frames[0].save(out, "WEBP", save_all=True, append_images=frames[1:])
    return out.getvalue()


BAD_FILES = {
    "html named jpg": (lambda: b"<!doctype html><html><script>alert(1)</script></html>", 415,
                       "unsupported_media_type"),
    "svg": (lambda: b'<svg xmlns="http://www.w3.org/2000/svg"><script/></svg>', 415,
            "unsupported_media_type"),
    "tiff": (lambda: encode(scene((64, 64)), "TIFF"), 415, "unsupported_media_type"),
    "animated gif": (_animated_gif, 415, "unsupported_media_type"),
    "animated webp": (_animated_webp, 422, "invalid_image"),
    "png declaring 60000x60000": (lambda: png_declaring(60000, 60000), 422, "invalid_image"),
    "truncated jpeg": (_truncated_jpeg, 422, "invalid_image"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_file_is_rejected_and_nothing_changes(client, actors, staff, app, case):
    make, status, code = BAD_FILES[case]
    donor, _, claim = _claimed(client, actors, staff)
    res = _upload(client, donor, claim["id"], make())
    assert res.status_code == status, res.get_json()
    assert res.get_json()["code"] == code
    with app.app_context():
        assert db.session.get(Claim, claim["id"]).status == "active"
        assert db.session.execute(select(Proof)).first() is None


def test_jpeg_with_a_zip_appended_is_stored_only_as_the_clean_reencode(client, actors, staff, app):
    donor, _, claim = _claimed(client, actors, staff)
    res = _upload(client, donor, claim["id"], encode(scene((800, 600)), "JPEG") + _zip_bytes())
    assert res.status_code == 201
    _process(app, res.get_json()["id"])
    url = client.get(f"/api/v1/claims/{claim['id']}/proofs",
                     headers=donor.headers).get_json()[0]["image_url"]
    served = client.get(url).get_data()
    assert b"PK\x03\x04" not in served and served.endswith(b"\xff\xd9")


def test_upload_over_the_size_limit_is_413_before_reading(client, actors, staff, app):
    donor, _, claim = _claimed(client, actors, staff)
    big = b"\xff\xd8\xff" + b"\x00" * (app.config["MAX_UPLOAD_BYTES"] + 100_000)
    res = _upload(client, donor, claim["id"], big)
    assert res.status_code == 413 and res.get_json()["code"] == "upload_too_large"


def test_a_photo_reused_from_another_wish_is_flagged_to_the_caseworker(client, actors, staff, app):
    data = _gps_photo(seed=7)
    for _ in range(2):
        donor, _, claim = _claimed(client, actors, staff)
        _process(app, _upload(client, donor, claim["id"], data).get_json()["id"])
    with app.app_context():
        topics = [n.topic for n in db.session.execute(
            select(InboxNotification).order_by(InboxNotification.created_at)).scalars()]
        assert topics == ["proof_submitted", "proof_flagged"]
        flagged = db.session.execute(select(Proof).order_by(Proof.created_at.desc())).scalars()
        assert len(next(iter(flagged)).similar_to) == 1


def test_withdrawn_consent_deletes_the_photos(client, actors, staff, app):
    from app.media.storage import get_storage

    donor, wish, claim = _claimed(client, actors, staff)
    proof = _upload(client, donor, claim["id"], _gps_photo()).get_json()
    _process(app, proof["id"])
    with app.app_context():
        stored = db.session.get(Proof, proof["id"])
        keys = [stored.image_key, stored.thumb_key]
        ben_id = stored.claim_id and db.session.get(Claim, claim["id"]).wish.beneficiary_id
    res = client.post(f"/api/v1/beneficiaries/{ben_id}/withdraw-consent",
                      headers=staff[0].headers)
    assert res.status_code == 200
    with app.app_context():
        assert db.session.get(Proof, proof["id"]).status == "deleted"
        assert not any(get_storage().exists(k) for k in keys)


def test_a_claim_released_between_the_checks_and_the_lock_is_not_delivered(
        client, actors, staff, app):
    """The upload checks the claim, then the photo, then locks the claim: a release committed in
    between (here by another connection, just before the locking SELECT) must be seen under the
    lock, not the claim as the checks read it."""
    from sqlalchemy import event

    donor, _wish, claim = _claimed(client, actors, staff)
    with app.app_context():
        engine = db.engine
    fired = []

    def release_first(conn, cursor, statement, parameters, context, executemany):
        if not fired and "FOR UPDATE OF claims" in statement:
            fired.append(True)
            with engine.connect() as other:
                other.execute(update(Claim).where(Claim.id == claim["id"])
                              .values(status="released"))
                other.commit()

    event.listen(engine, "before_cursor_execute", release_first)
    try:
        res = _upload(client, donor, claim["id"], encode(scene(), "JPEG"))
    finally:
        event.remove(engine, "before_cursor_execute", release_first)
    assert fired
    assert res.status_code == 409, res.get_json()
    with app.app_context():
        assert db.session.get(Claim, claim["id"]).status == "released"
        assert db.session.execute(select(Proof).where(Proof.claim_id == claim["id"])).first() is None
