"""Photo proof of delivery: checked at once, re-encoded by a worker, served only by signed link.

The request does the cheap, decisive checks (size, magic bytes, pixel limit, animation, a full
decode that catches truncation) and stops the claim's clock; the heavy re-encode, thumbnail and
perceptual hash run in the media queue. The upload itself waits in a quarantine area that is
never served, and is deleted once the clean re-encode exists.
"""
from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import select

from app.auth.models import User
from app.beneficiaries.models import Beneficiary
from app.claims import notices
from app.claims.models import Claim, Proof
from app.claims.service import (
    check_text_for_donor, get_claim_for, lock_claim_for, mark_delivered,
)
from app.errors import Conflict, DomainError, NotFound
from app.extensions import db
from app.media import images
from app.media.signing import signed_url
from app.media.storage import get_storage
from app.queue import ring_after_commit
from app.settings import settings
from app.uow import current, on_commit, unit_of_work, use_case
from app.types import new_id, utcnow
from app.wishes.models import Wish

log = logging.getLogger(__name__)

_EXTENSIONS = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp"}
_CONTENT_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}


def submit_proof(donor: User, claim_id: str, photo: bytes, note: str | None) -> Proof:
    claim = get_claim_for(donor, claim_id)
    if claim.donor_id != donor.id:
        raise NotFound("未找到该认领")
    if claim.status == "expired":
        raise Conflict("claim_expired", "认领已超时，不能再提交送达凭证")
    check_text_for_donor(claim, {"note": note}, what="凭证备注")
    images.ensure_upload_size(len(photo), settings()["MAX_UPLOAD_BYTES"])
    fmt = images.sniff_format(photo[:16])
    images.inspect(photo, settings()["MAX_IMAGE_PIXELS"])  # before any lock is held

    storage = get_storage()
    written = None  # the quarantined upload, deleted again if the transaction fails
    try:
        # keep_loaded: every column of the proof, the claim and its wish is set in Python, so
        # the 201 and the log line use them as written instead of reading all three back.
        with unit_of_work(keep_loaded=True) as uow:
            claim = lock_claim_for(donor, claim_id)
            mark_delivered(claim, donor.id)  # re-checks the deadline under the lock
            proof_id = new_id("prf")
            upload_key = f"quarantine/{proof_id}/upload{_EXTENSIONS[fmt]}"
            proof = Proof(id=proof_id, claim_id=claim.id, wish_id=claim.wish_id,
                          uploaded_by=donor.id, note=note, status="processing",
                          upload_key=upload_key)
            db.session.add(proof)
            uow.produced("proof", proof.id)
            _ring(proof.id)
            storage.put(upload_key, photo, _CONTENT_TYPES[fmt])
            written = upload_key
    except Exception:
        if written is not None:
            storage.delete(written)
        raise
    log.info("proof %s uploaded for claim %s; claim delivered", proof.id, claim.id)
    return proof


@use_case
def process_proof(proof_id: str) -> str:
    """The media job: re-encode, thumbnail, hash, compare. Safe to run twice."""
    proof = current().lock("proof", select(Proof).where(Proof.id == proof_id)
                           .with_for_update(skip_locked=True)).scalar_one_or_none()
    if proof is None or proof.status != "processing":
        return proof.status if proof else "missing"
    storage = get_storage()
    try:
        result = images.process(storage.get(proof.upload_key),
                                max_pixels=settings()["MAX_IMAGE_PIXELS"])
    except (DomainError, FileNotFoundError) as exc:
        log.warning("proof %s could not be processed: %s", proof.id, exc)
        proof.status = "failed"
        _delete_upload(proof, storage)
        return proof.status
    proof.image_key = f"proofs/{proof.id}/full.jpg"
    proof.thumb_key = f"proofs/{proof.id}/thumb.jpg"
    storage.put(proof.image_key, result.image, "image/jpeg")
    storage.put(proof.thumb_key, result.thumbnail, "image/jpeg")
    proof.width, proof.height = result.width, result.height
    proof.dhash = images.signed64(result.dhash)
    proof.similar_to = _look_alikes(proof, result.dhash)
    proof.status = "ready"
    proof.processed_at = utcnow()
    _delete_upload(proof, storage)
    notices.proof_submitted(db.session.get(Claim, proof.claim_id), proof.id, proof.similar_to)
    if proof.similar_to:
        log.warning("proof %s looks like earlier proofs %s", proof.id, proof.similar_to)
    return proof.status


def _look_alikes(proof: Proof, dhash: int) -> list[str]:
    """Earlier proofs of *other* wishes whose photo looks like this one (a reused photo)."""
    rows = db.session.execute(
        select(Proof.id, Proof.dhash).where(Proof.status == "ready", Proof.dhash.is_not(None),
                                            Proof.wish_id != proof.wish_id))
    return [pid for pid, other in rows if images.looks_alike(dhash, images.unsigned64(other))]


def _delete_upload(proof: Proof, storage) -> None:
    """Forget the quarantined upload; the file goes once this is committed (a rerun of a job
    that failed to commit still finds it)."""
    if proof.upload_key:
        key, proof.upload_key = proof.upload_key, None
        on_commit(db.session, lambda: storage.delete(key))


@use_case
def requeue_stuck(older_than_seconds: int | None = None) -> int:
    """Sweeper: proofs whose media job was lost get a new doorbell: Redis lost the job, or the
    worker died mid-job (RQ 3.0 never reruns an abandoned job: it only moves it to the failed
    registry, minutes later). Default age: PROOF_REQUEUE_SECONDS."""
    if older_than_seconds is None:
        older_than_seconds = settings()["PROOF_REQUEUE_SECONDS"]
    cutoff = utcnow() - timedelta(seconds=older_than_seconds)
    ids = list(db.session.execute(select(Proof.id).where(
        Proof.status == "processing", Proof.created_at < cutoff)).scalars())
    for proof_id in ids:
        _ring(proof_id)  # adds nothing while this proof's job is still waiting or running
    return len(ids)


def _ring(proof_id: str) -> None:
    """The media job's doorbell, one job id per proof: a running job processes the proof
    (no `again`), and the sweeper's repeated rings collapse into the one already queued."""
    ring_after_commit(db.session, "media", "workers.jobs.process_proof", proof_id,
                      key=f"proof-{proof_id}")


def proofs_of(user: User, claim_id: str) -> list[Proof]:
    claim = get_claim_for(user, claim_id)
    return list(db.session.execute(select(Proof).where(Proof.claim_id == claim.id)
                                   .order_by(Proof.created_at)).scalars())


def links(proof: Proof) -> dict:
    ttl = settings()["MEDIA_URL_TTL_SECONDS"]
    if proof.status != "ready":
        return {"image_url": None, "thumb_url": None}
    return {"image_url": signed_url(proof.image_key, ttl),
            "thumb_url": signed_url(proof.thumb_key, ttl)}


def delete_photos_of(ben: Beneficiary) -> None:
    """Consent withdrawn (app.handlers): every photo of the beneficiary's wishes goes, files
    and keys; the files once the withdrawal commits."""
    storage = get_storage()
    proofs = db.session.execute(
        select(Proof).join(Wish, Wish.id == Proof.wish_id)
        .where(Wish.beneficiary_id == ben.id, Proof.status != "deleted")).scalars()
    keys: list[str] = []
    for proof in proofs:
        keys += [k for k in (proof.upload_key, proof.image_key, proof.thumb_key) if k]
        proof.upload_key = proof.image_key = proof.thumb_key = None
        proof.status = "deleted"
    on_commit(db.session, lambda: [storage.delete(key) for key in keys])
