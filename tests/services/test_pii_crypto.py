"""Identity at rest: AES-GCM under a key id, readable across a key rotation, bound to its row and
column so a ciphertext that was edited or moved does not decrypt."""
from __future__ import annotations

import base64

import pytest
import sqlalchemy as sa

from tests.factories import SECRET_ID_NUMBER, SECRET_NAME, SECRET_PHONE, Actors, id_number

KEY_A = base64.b64encode(b"A" * 32).decode()
KEY_B = base64.b64encode(b"B" * 32).decode()


@pytest.fixture
def make_app(app, app_config):
    """Another app on the same database and Redis, with its own encryption settings."""
    from app import create_app

    def build(key: str, old_keys: list[str] | None = None):
        return create_app({**app_config, "DATA_ENCRYPTION_KEY": key,
                           "DATA_ENCRYPTION_OLD_KEYS": old_keys or []})
    return build


def _reveal(application, actor, ben_id):
    return application.test_client().get(f"/api/v1/beneficiaries/{ben_id}?reveal=true",
                                          headers=actor.headers)


def _stored(application, ben_id, column="real_name_enc") -> bytes:
    from app.extensions import db
    with application.app_context():
        return bytes(db.session.execute(sa.text(
            f"SELECT {column} FROM beneficiaries WHERE id = :id"), {"id": ben_id}).scalar_one())


def _identity(application, ben_id):
    from app.beneficiaries.models import Beneficiary
    from app.beneficiaries.service import identity_of
    from app.extensions import db
    with application.app_context():
        return identity_of(db.session.get(Beneficiary, ben_id))


def test_rows_written_under_old_key_stay_readable_after_rotation(make_app):
    from app import pii

    app_a = make_app(KEY_A)
    people = Actors(app_a, app_a.test_client())
    caseworker = people.caseworker()
    ben = people.beneficiary(caseworker)

    app_b = make_app(KEY_B, old_keys=[KEY_A])
    res = _reveal(app_b, caseworker, ben["id"])
    assert res.status_code == 200, res.get_json()
    body = res.get_json()
    assert (body["real_name"], body["id_number"], body["phone"]) == (
        SECRET_NAME, SECRET_ID_NUMBER, SECRET_PHONE)

    # New rows are written under the new key, and the old row still names the old one.
    newer = Actors(app_b, app_b.test_client()).beneficiary(caseworker, alias="陈阿公")
    with app_b.app_context():
        assert pii.is_current_key(_stored(app_b, newer["id"]))
        assert not pii.is_current_key(_stored(app_b, ben["id"]))
    assert _stored(app_b, newer["id"])[1:5] == pii.key_id(b"B" * 32)


def test_reencrypt_moves_every_old_row_to_the_current_key_so_the_old_key_can_go(make_app):
    from app import pii

    app_a = make_app(KEY_A)
    people = Actors(app_a, app_a.test_client())
    caseworker = people.caseworker()
    ben = people.beneficiary(caseworker)

    app_b = make_app(KEY_B, old_keys=[KEY_A])
    result = app_b.test_cli_runner().invoke(args=["pii", "reencrypt"])
    assert result.exit_code == 0, result.output
    assert "re-encrypted 4 identity fields" in result.output
    again = app_b.test_cli_runner().invoke(args=["pii", "reencrypt"])
    assert "re-encrypted 0 identity fields" in again.output
    with app_b.app_context():
        assert pii.is_current_key(_stored(app_b, ben["id"]))
    # The old key is no longer needed.
    app_b_only = make_app(KEY_B)
    assert _identity(app_b_only, ben["id"])["real_name"] == SECRET_NAME


def test_row_under_a_key_no_longer_configured_does_not_decrypt(make_app):
    app_a = make_app(KEY_A)
    caseworker = Actors(app_a, app_a.test_client()).caseworker()
    ben = Actors(app_a, app_a.test_client()).beneficiary(caseworker)
    app_b_only = make_app(KEY_B)
    with pytest.raises(ValueError, match="no longer configured"):
        _identity(app_b_only, ben["id"])
    res = _reveal(app_b_only, caseworker, ben["id"])
    assert res.status_code == 500
    assert SECRET_NAME not in res.get_data(as_text=True)


def _write(application, ben_id, column, value: bytes) -> None:
    from app.extensions import db
    with application.app_context():
        db.session.execute(sa.text(f"UPDATE beneficiaries SET {column} = :v WHERE id = :id"),
                           {"v": value, "id": ben_id})
        db.session.commit()


def test_tampered_ciphertext_fails_authentication(app, client, actors):
    ben = actors.beneficiary(actors.caseworker())
    blob = bytearray(_stored(app, ben["id"]))
    blob[-1] ^= 0x01
    _write(app, ben["id"], "real_name_enc", bytes(blob))
    with pytest.raises(ValueError, match="authentication"):
        _identity(app, ben["id"])


def test_ciphertext_moved_to_another_row_fails(app, client, actors):
    caseworker = actors.caseworker()
    first = actors.beneficiary(caseworker)
    second = actors.beneficiary(caseworker, real_name="陈大山", alias="陈阿公",
                                id_number=id_number("19600101"))
    _write(app, second["id"], "real_name_enc", _stored(app, first["id"]))
    with pytest.raises(ValueError):
        _identity(app, second["id"])
    res = client.get(f"/api/v1/beneficiaries/{second['id']}?reveal=true",
                     headers=caseworker.headers)
    assert res.status_code == 500
    assert SECRET_NAME not in res.get_data(as_text=True)


def test_ciphertext_moved_to_another_column_fails(app, client, actors):
    ben = actors.beneficiary(actors.caseworker())
    _write(app, ben["id"], "phone_enc", _stored(app, ben["id"], "real_name_enc"))
    with pytest.raises(ValueError):
        _identity(app, ben["id"])


def test_same_value_encrypts_differently_each_time(app):
    from app import pii
    with app.app_context():
        one = pii.encrypt(SECRET_NAME, "beneficiaries.real_name.x")
        two = pii.encrypt(SECRET_NAME, "beneficiaries.real_name.x")
        assert one != two
        assert pii.decrypt(one, "beneficiaries.real_name.x") == SECRET_NAME
