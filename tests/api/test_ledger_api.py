"""The open ledger through the public API: a confirmed claim becomes exactly one entry, and anyone
can verify it with the signed checkpoint, the published key and the proofs."""
from __future__ import annotations

import base64
import json

import pytest

from app.auth.models import User
from app.claims.models import Claim
from app.extensions import db
from app.ledger import merkle, note
from app.ledger.entries import canonical
from tests.factories import SECRET_ADDRESS, SECRET_ID_NUMBER, SECRET_NAME, SECRET_PHONE

L = "/api/v1/ledger"


@pytest.fixture
def staff(actors):
    return actors.caseworker(), actors.moderator()


def _fulfil(actors, staff) -> tuple[dict, dict]:
    """Claim an open wish, deliver it and confirm it: (the wish, the claim)."""
    caseworker, moderator = staff
    wish = actors.open_wish(caseworker, moderator)
    return wish, actors.fulfil(actors.donor(), caseworker, wish["id"])


def _checkpoint(client) -> tuple[int, bytes]:
    """The current signed checkpoint, verified against the published key: (size, root)."""
    key = client.get(f"{L}/key").get_json()
    res = client.get(f"{L}/checkpoint")
    assert res.status_code == 200 and res.mimetype == "text/plain"
    origin, size, root = note.parse_checkpoint(note.verify_note(res.get_data(as_text=True),
                                                                key["vkey"]))
    assert origin == key["origin"]
    return size, root


def _entries(client) -> list[dict]:
    res = client.get(f"{L}/entries?start=0&limit=1000")
    assert res.status_code == 200
    return res.get_json()["items"]


def test_confirmed_claim_is_one_entry_whose_exact_bytes_are_in_the_signed_tree(
        client, app, actors, staff):
    wish, claim = _fulfil(actors, staff)
    [item] = _entries(client)
    leaf = base64.b64decode(item["leaf_b64"])
    assert leaf == canonical(item["entry"])
    assert item["entry"]["kind"] == "in_kind_fulfilment" and item["entry"]["wish_id"] == wish["id"]
    assert item["entry"]["value_fen"] == 80000 and item["entry"]["donor"] == "爱心人士"
    assert item["entry"]["town"] == "350505101" and item["entry"]["at"].endswith("Z")
    assert client.get(f"{L}/entries/0").get_json() == item

    size, root = _checkpoint(client)
    assert size == 1
    proof = client.get(f"{L}/proof/inclusion?index=0&tree_size=1").get_json()
    assert proof == {"index": 0, "tree_size": 1, "hashes": []}
    merkle.check_inclusion(merkle.leaf_hash(leaf), 0, 1, [], root)


def test_confirming_again_adds_nothing_to_the_ledger(client, app, actors, staff):
    _, claim = _fulfil(actors, staff)
    again = client.post(f"/api/v1/claims/{claim['id']}/confirm", headers=staff[0].headers)
    assert again.status_code in (200, 409)
    assert len(_entries(client)) == 1


def test_inclusion_and_consistency_proofs_verify_against_signed_checkpoints(
        client, app, actors, staff):
    for _ in range(3):
        _fulfil(actors, staff)
    size1, root1 = _checkpoint(client)
    for _ in range(2):
        _fulfil(actors, staff)
    size2, root2 = _checkpoint(client)
    assert (size1, size2) == (3, 5)

    leaves = [base64.b64decode(i["leaf_b64"]) for i in _entries(client)]
    for index, leaf in enumerate(leaves):
        body = client.get(f"{L}/proof/inclusion?index={index}&tree_size={size2}").get_json()
        hashes = [bytes.fromhex(h) for h in body["hashes"]]
        merkle.check_inclusion(merkle.leaf_hash(leaf), index, size2, hashes, root2)
        tampered = leaf.replace(b"80000", b"80001")
        assert not merkle.verify_inclusion(merkle.leaf_hash(tampered), index, size2, hashes, root2)

    body = client.get(f"{L}/proof/consistency?first={size1}&second={size2}").get_json()
    assert body["first"] == size1 and body["second"] == size2
    merkle.check_consistency(size1, size2, root1, root2, [bytes.fromhex(h) for h in body["hashes"]])


def test_checkpoint_is_not_re_signed_until_the_log_grows(client, app, actors, staff):
    _fulfil(actors, staff)
    first = client.get(f"{L}/checkpoint").get_data()
    assert client.get(f"{L}/checkpoint").get_data() == first
    _fulfil(actors, staff)
    assert client.get(f"{L}/checkpoint").get_data() != first


@pytest.mark.parametrize("query", [
    "inclusion?index=2&tree_size=2",          # index >= tree_size
    "inclusion?index=0&tree_size=3",          # beyond the log
    "inclusion?index=-1&tree_size=1",
    "inclusion?index=0",
    "consistency?first=2&second=1",           # first > second
    "consistency?first=0&second=2",           # from the empty tree
    "consistency?first=1&second=3",           # beyond the log
    "consistency?first=x&second=2",
])
def test_impossible_proof_requests_are_422(client, app, actors, staff, query):
    for _ in range(2):
        _fulfil(actors, staff)
    res = client.get(f"{L}/proof/{query}")
    assert res.status_code == 422 and res.mimetype == "application/problem+json"
    assert res.get_json()["code"] == "validation_error" and res.get_json()["detail"]


def test_missing_entry_is_404(client):
    res = client.get(f"{L}/entries/0")
    assert res.status_code == 404 and res.get_json()["code"] == "not_found"


def test_entries_never_name_the_beneficiary_or_the_donor(client, app, actors, staff):
    _, claim = _fulfil(actors, staff)
    with app.app_context():
        donor = db.session.get(User, db.session.get(Claim, claim["id"]).donor_id)
        openid, donor_id = donor.wechat_openid, donor.id
    [item] = _entries(client)
    text = base64.b64decode(item["leaf_b64"]).decode("utf-8") + json.dumps(item,
                                                                          ensure_ascii=False)
    for secret in (SECRET_NAME, SECRET_ID_NUMBER, SECRET_PHONE, SECRET_ADDRESS, openid, donor_id,
                   claim["id"], "林阿婆"):  # not even the public alias
        assert secret not in text, secret
    assert set(item["entry"]) == {"kind", "wish_id", "town", "item", "value_fen", "at", "donor"}


def test_key_is_a_c2sp_verifier_key_named_by_the_origin(client):
    key = client.get(f"{L}/key").get_json()
    name, _, _ = note.parse_verifier_key(key["vkey"])
    assert name == key["origin"]
