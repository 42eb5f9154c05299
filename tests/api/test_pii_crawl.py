"""Every route in app.url_map, crawled as the public and as donors for a beneficiary's identity.

The world: the beneficiary seeded with the factory's SECRET_* identity (born 1950, in VILLAGE),
their wishes in every state, a donor's claims in every state with photo proofs (the photos carry
GPS EXIF, XMP, IPTC and a comment), ledger entries of every kind that can be made here, and
money donations. Internal-only fields (a disbursement's payee and note, a reversal's reason) are
filled with the secrets, so a public view that shows them is caught. Every text a donor sees or
sends (dispute and reject reasons, proof notes, withdrawal reasons) is first tried with the
identity in it, plainly and dodged (full-width digits, a split name): each try must be refused
422 `pii_in_text`, and then a clean dispute reason reaches the donor's claim and WeChat message.

Then every GET route (the public site's HTML pages too) is fetched with its path filled by real ids of every kind (and a bogus one,
and the ID number itself as an id) by the public, by the donor who owns the objects and by a
second donor who does not; every write route is sent a malformed body, an empty one and the
beneficiary's identity as a body. No body and no header may contain the identity.

A route whose policy lets the public or donors in must have ids for every part of its path in
ID_SOURCES; a staff-only route must be listed in STAFF_ONLY (it is still crawled, with a bogus id,
for its 401/403). A new route that is neither fails test_every_route_is_crawled_or_listed.
Served photos are opened with Pillow: no EXIF, GPS, XMP, ICC, comment, or bytes after the EOI.
"""
from __future__ import annotations

import io
import re
import struct
import uuid

import pytest
from PIL import Image, ImageCms

from miniprogram_api.policy import PUBLIC, access_of
from tests.api.test_pii_leaks import SECRETS, assert_clean
from tests.factories import (
    SECRET_ADDRESS, SECRET_ID_NUMBER, SECRET_NAME, SECRET_PHONE, VILLAGE, beneficiary_payload,
)
from tests.media.conftest import XMP, encode, exif_with, scene

API = "/api/v1"
VIEWERS = ("public", "owner", "other_donor")
BOGUS = "zzz_no_such_object_0000000000"
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
ECHO_QUERY = f"?reveal=true&region={VILLAGE}&purpose={SECRET_NAME}&q={SECRET_PHONE}"

# Staff-only routes (by their @allow policy): crawled with a bogus id only, for the 401/403.
# (POST /signals is for partner systems only: neither the public nor a donor gets past it.)
STAFF_ONLY = {
    ("POST", f"{API}/signals"),
    ("GET", f"{API}/staff"), ("PATCH", f"{API}/staff/<user_id>"),
    ("POST", f"{API}/beneficiaries"), ("GET", f"{API}/beneficiaries"),
    ("GET", f"{API}/beneficiaries/<ben_id>"), ("GET", f"{API}/beneficiaries/<ben_id>/access-log"),
    ("POST", f"{API}/beneficiaries/<ben_id>/withdraw-consent"),
    ("POST", f"{API}/wishes"), ("PATCH", f"{API}/wishes/<wish_id>"),
    ("POST", f"{API}/wishes/<wish_id>/submit"), ("POST", f"{API}/wishes/<wish_id>/approve"),
    ("POST", f"{API}/wishes/<wish_id>/reject"), ("POST", f"{API}/wishes/<wish_id>/withdraw"),
    ("GET", f"{API}/wishes/<wish_id>/transitions"), ("GET", f"{API}/staff/wishes"),
    ("GET", f"{API}/moderation/wishes"),
    ("POST", f"{API}/claims/<claim_id>/confirm"), ("POST", f"{API}/claims/<claim_id>/dispute"),
    ("GET", f"{API}/me/notifications"), ("POST", f"{API}/me/notifications/<notification_id>/read"),
    ("POST", f"{API}/disbursements"), ("GET", f"{API}/disbursements"),
    ("GET", f"{API}/disbursements/<disbursement_id>"),
    ("POST", f"{API}/disbursements/<disbursement_id>/approve"),
    ("POST", f"{API}/disbursements/<disbursement_id>/reject"),
    ("POST", f"{API}/ledger/reversals"),
    ("GET", f"{API}/tasks"), ("POST", f"{API}/tasks/<task_id>/complete"),
    ("POST", f"{API}/tasks/<task_id>/start"),
    ("GET", f"{API}/alert-rules"), ("PUT", f"{API}/alert-rules"),
    ("GET", f"{API}/cases/stats"), ("POST", f"{API}/applications/<application_id>/decision"),
}
# Not ours, public by nature: the OpenAPI document and its UI page.
DOCUMENTS = {"api-docs.openapi_json", "api-docs.openapi_swagger_ui"}

# Path argument -> the world's ids for it (real ones of every kind, then a bogus one).
ID_SOURCES = {
    "wish_id": lambda w: [*w.wish_ids.values(), BOGUS, SECRET_ID_NUMBER],
    "claim_id": lambda w: [*w.claim_ids.values(), BOGUS, SECRET_ID_NUMBER],
    "index": lambda w: [*w.ledger_indexes, 10**6],
    "key": lambda w: [*w.media_keys, f"proofs/{BOGUS}/full.jpg"],
    "donation_id": lambda w: [*w.donation_ids, BOGUS, SECRET_ID_NUMBER],
    "tile": lambda w: w.tiles(levels=True),
    "bundle": lambda w: w.tiles(levels=False),
    # The public site's content-hashed files, an unhashed name and a path out of the folder.
    "name": lambda w: [*w.app.extensions["site_assets"].by_url, "site.css", "../../app/config.py"],
}


def norm(rule: str) -> str:
    """`/staff/<user_id:user_id>` -> `/staff/<user_id>`: the lists here name arguments, not the
    converters (which change without changing who may call the route)."""
    return re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"<\1>", rule)


def fill(rule: str, name: str, value) -> str:
    return re.sub(r"<(?:[^:>]+:)?" + re.escape(name) + ">", lambda _: str(value), rule)


def _exempt(endpoint: str) -> bool:
    return endpoint == "static" or (endpoint.startswith("api-docs.")
                                    and endpoint not in DOCUMENTS)


def _routes(app):
    """(method, rule object) for every route but the static folder and unused doc UIs."""
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if _exempt(rule.endpoint):
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield method, rule


def _reachable(app, rule) -> bool:
    """Can the public or a donor get past the access check?"""
    if rule.endpoint in DOCUMENTS:
        return True
    roles = access_of(app, rule.endpoint) or frozenset()
    return bool(roles & {PUBLIC, "donor"})


def test_every_route_is_crawled_or_listed_staff_only(app):
    assert all(norm(rule) == rule for _, rule in STAFF_ONLY)
    problems = []
    seen = set()
    for method, rule in _routes(app):
        seen.add((method, norm(rule.rule)))
        listed = (method, norm(rule.rule)) in STAFF_ONLY
        if _reachable(app, rule):
            if listed:
                problems.append(f"{method} {rule.rule} lets the public or donors in: "
                                "remove it from STAFF_ONLY")
            missing = set(rule.arguments) - set(ID_SOURCES)
            if missing:
                problems.append(f"{method} {rule.rule}: add ids for {sorted(missing)} to "
                                "ID_SOURCES (and seed such objects in CrawlWorld)")
        elif not listed:
            problems.append(f"{method} {rule.rule} is new and staff-only by its policy: "
                            "add it to STAFF_ONLY")
    stale = STAFF_ONLY - seen
    if stale:
        problems.append(f"STAFF_ONLY lists routes that are gone: {sorted(stale)}")
    assert not problems, "\n".join(problems)


# --- photos with everything a phone puts in a file ---------------------------------------------

def _segment(marker: int, payload: bytes) -> bytes:
    return struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload


def _iptc_block() -> bytes:
    """An APP13 Photoshop IRB with an IPTC-IIM record (city, sublocation, caption)."""
    def dataset(number: int, value: str) -> bytes:
        data = value.encode()
        return struct.pack(">BBBH", 0x1C, 2, number, len(data)) + data
    iptc = dataset(90, "泉港区") + dataset(92, SECRET_ADDRESS) + dataset(120, SECRET_NAME)
    iptc += b"\x00" * (len(iptc) % 2)
    resource = b"8BIM" + struct.pack(">H", 0x0404) + b"\x00\x00" + struct.pack(">I", len(iptc))
    return _segment(0xED, b"Photoshop 3.0\x00" + resource + iptc)


def _srgb_icc() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _laden_exif() -> Image.Exif:
    exif = exif_with(orientation=1, gps=True)
    exif[0x010E] = f"{SECRET_NAME} {SECRET_PHONE}"  # ImageDescription
    return exif


def laden_photos(seed: int = 0) -> dict[str, bytes]:
    """A JPEG, a PNG and a WebP that carry GPS EXIF, XMP with GPS, ICC, a comment, and (JPEG) an
    IPTC block and bytes after the EOI."""
    image = scene((640, 480), seed)
    jpeg = encode(image, "JPEG", quality=90, exif=_laden_exif(), xmp=XMP,
                  icc_profile=_srgb_icc(), comment=f"家：{SECRET_ADDRESS}".encode())
    jpeg = jpeg[:2] + _iptc_block() + jpeg[2:] + b"TRAILER " + SECRET_PHONE.encode()
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_itxt("XML:com.adobe.xmp", XMP.decode())
    info.add_text("Comment", SECRET_ADDRESS)
    png = encode(scene((640, 480), seed + 1), "PNG", pnginfo=info, exif=_laden_exif(),
                 icc_profile=_srgb_icc())
    webp = encode(scene((640, 480), seed + 2), "WEBP", exif=_laden_exif(), xmp=XMP,
                  icc_profile=_srgb_icc())
    photos = {"jpeg": jpeg, "png": png, "webp": webp}
    for name, data in photos.items():  # the uploads really carry it all
        with Image.open(io.BytesIO(data)) as im:
            assert im.getexif().get_ifd(0x8825), name
            assert "icc_profile" in im.info, name
        assert b"GPSLatitude" in data, name
    assert b"Photoshop 3.0" in jpeg
    return photos


def jpeg_segments(data: bytes) -> tuple[list[int], int]:
    """The marker of every segment before the image data, and where the EOI ends."""
    assert data[:2] == b"\xff\xd8", "not a JPEG"
    markers, i = [], 2
    while i < len(data):
        assert data[i] == 0xFF, f"no marker at {i}"
        marker = data[i + 1]
        if marker == 0xD9:
            return markers, i + 2
        length = struct.unpack(">H", data[i + 2:i + 4])[0]
        markers.append(marker)
        i += 2 + length
        if marker == 0xDA:  # entropy-coded data: up to the next marker that is not a stuffed
            while True:      # 0xFF00 or a restart marker
                i = data.index(b"\xff", i)
                if data[i + 1] == 0 or 0xD0 <= data[i + 1] <= 0xD7:
                    i += 2
                    continue
                break
    raise AssertionError("no EOI")


def assert_bare_jpeg(data: bytes, where: str) -> None:
    markers, end = jpeg_segments(data)
    assert end == len(data), f"{where}: {len(data) - end} bytes after the EOI"
    metadata = [hex(m) for m in markers if 0xE1 <= m <= 0xEF or m == 0xFE]
    assert not metadata, f"{where}: APPn/COM segments {metadata}"
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        assert im.format == "JPEG", where
        assert not im.getexif(), f"{where}: EXIF"
        assert not im.getexif().get_ifd(0x8825), f"{where}: GPS"
        for key in ("exif", "xmp", "icc_profile", "comment", "photoshop", "adobe"):
            assert key not in im.info, f"{where}: {key}"
        assert [name for name, _ in im.applist] in ([], ["APP0"]), where
    for marker in (b"GPS", b"Exif", b"http://ns.adobe.com", b"Photoshop", b"8BIM",
                   b"TRAILER", SECRET_PHONE.encode(), SECRET_NAME.encode()):
        assert marker not in data, f"{where}: {marker!r}"


# --- the world ---------------------------------------------------------------------------------

class CrawlWorld:
    def __init__(self, app, client, actors, fake_wechatpay=None) -> None:
        self.app, self.client, self.actors = app, client, actors
        self.fake_wechatpay = fake_wechatpay
        self.wish_ids: dict[str, str] = {}
        self.claim_ids: dict[str, str] = {}
        self.ledger_indexes: list[int] = []
        self.media_keys: list[str] = []
        self.donation_ids: list[str] = []
        self.cw = actors.caseworker()
        self.mod = actors.moderator()
        self.owner = actors.donor("crawl-owner")
        self.other_donor = actors.donor("crawl-other")
        self.ben = actors.beneficiary(self.cw)

    def headers(self, viewer: str) -> dict[str, str]:
        return {} if viewer == "public" else getattr(self, viewer).headers

    def _post(self, path: str, who, body=None, **kw):
        res = self.client.post(path, json=body, headers={
            **who.headers, "Idempotency-Key": str(uuid.uuid4())}, **kw)
        assert res.status_code in (200, 201), (path, res.get_data(as_text=True)[:300])
        return res.get_json()

    def _wish(self, title: str) -> str:
        return self.actors.open_wish(self.cw, self.mod, beneficiary_id=self.ben["id"],
                                     title=title)["id"]

    def _claim(self, wish_id: str) -> str:
        return self._post(f"{API}/wishes/{wish_id}/claims", self.owner)["id"]

    def upload(self, claim_id: str, photo: bytes, name: str) -> str:
        res = self.client.post(f"{API}/claims/{claim_id}/proofs", data={
            "note": "已送到", "photo": (io.BytesIO(photo), name)},
            content_type="multipart/form-data",
            headers={**self.owner.headers, "Idempotency-Key": str(uuid.uuid4())})
        assert res.status_code == 201, res.get_data(as_text=True)[:300]
        from app.claims.proofs import process_proof

        with self.app.app_context():
            assert process_proof(res.get_json()["id"]) == "ready"
        return res.get_json()["id"]

    def seed_cases(self) -> None:
        """Finding people: partner signals naming the beneficiary (a visit task staff see,
        masked), and the owner's application for them, with the same identity."""
        from tests.cases.helpers import application_payload, ingest, item, local

        now = local("2026-11-10 10:00")
        ingest(self.app, [item(at=now, id_no=SECRET_ID_NUMBER, name=SECRET_NAME, region=VILLAGE,
                               self_paid_fen=2_500_000),
                          item("grid_report", at=now, id_no=SECRET_ID_NUMBER, name=SECRET_NAME,
                               region=VILLAGE, note="独居")], now=now)
        body = application_payload(SECRET_ID_NUMBER, name=SECRET_NAME)
        body["applicant"]["phone"] = SECRET_PHONE
        res = self.client.post(f"{API}/applications", json=body, headers=self.owner.headers)
        assert res.status_code == 201, res.get_json()

    def seed_wishes(self) -> None:
        ben, cw, mod = self.ben["id"], self.cw, self.mod
        w = self.wish_ids
        w["draft"] = self.actors.draft_wish(cw, ben)["id"]
        w["pending"] = self.actors.submitted_wish(cw, beneficiary_id=ben)["id"]
        w["rejected"] = self.actors.submitted_wish(cw, beneficiary_id=ben)["id"]
        self._post(f"{API}/wishes/{w['rejected']}/reject", mod, {"reason": "资料不全"})
        w["withdrawn"] = self._wish("一副老花镜")
        self._post(f"{API}/wishes/{w['withdrawn']}/withdraw", cw)
        w["open"] = self._wish("一套课桌椅")
        w["open_service"] = self.actors.open_wish(cw, mod, beneficiary_id=ben, kind="service",
                                                  title="上门理发")["id"]

    def seed_claims(self, photos: dict[str, bytes]) -> None:
        from datetime import datetime, timedelta, timezone

        from app.claims.service import sweep_due_claims

        w, c = self.wish_ids, self.claim_ids
        w["expired_then_open"] = self._wish("一袋大米")
        c["expired"] = self._claim(w["expired_then_open"])
        with self.app.app_context():
            sweep_due_claims(now=datetime.now(timezone.utc) + timedelta(days=3))
        w["released_then_open"] = self._wish("一桶食用油")
        c["released"] = self._claim(w["released_then_open"])
        self._post(f"{API}/claims/{c['released']}/release", self.owner)
        w["claimed"] = self._wish("一床棉被")
        c["active"] = self._claim(w["claimed"])
        for name, photo in photos.items():  # delivered with a photo of each format
            w[f"delivered_{name}"] = self._wish(f"一台收音机{name}")
            c[f"delivered_{name}"] = self._claim(w[f"delivered_{name}"])
            self.upload(c[f"delivered_{name}"], photo, f"p.{name}")
        w["fulfilled"] = w.pop("delivered_jpeg")
        c["confirmed"] = c.pop("delivered_jpeg")
        self._post(f"{API}/claims/{c['confirmed']}/confirm", self.cw)

    def seed_texts(self) -> None:
        """The identity tried in every text another person sees; each refused. Then a clean
        dispute, so the donor's claim and WeChat message carry a reason the crawl reads."""
        full_width = SECRET_PHONE.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
        tries = (f"{SECRET_NAME} {SECRET_PHONE}", f"{SECRET_NAME[0]} {SECRET_NAME[1:]}",
                 f"电话{full_width}", f"住在{SECRET_ADDRESS}", f"证件{SECRET_ID_NUMBER}")
        w, c = self.wish_ids, self.claim_ids
        pending = self.actors.submitted_wish(self.cw, beneficiary_id=self.ben["id"])["id"]
        for text in tries:
            for path, who, body in (
                    (f"wishes/{pending}/reject", self.mod, {"reason": text}),
                    (f"wishes/{w['open']}/withdraw", self.cw, {"reason": text}),
                    (f"claims/{c['delivered_png']}/dispute", self.cw, {"reason": text})):
                res = self.client.post(f"{API}/{path}", json=body, headers=who.headers)
                assert res.status_code == 422 and res.get_json()["code"] == "pii_in_text", \
                    (path, text, res.get_json())
            res = self.client.post(f"{API}/claims/{c['active']}/proofs", data={
                "note": text, "photo": (io.BytesIO(encode(scene((64, 64)), "JPEG")), "p.jpg")},
                content_type="multipart/form-data",
                headers={**self.owner.headers, "Idempotency-Key": str(uuid.uuid4())})
            assert res.status_code == 422 and res.get_json()["code"] == "pii_in_text", \
                ("proof note", text, res.get_json())
        self._post(f"{API}/claims/{c['delivered_png']}/dispute", self.cw,
                   {"reason": "照片看不清，请补拍一张"})

    def outbox_payloads(self) -> str:
        """Everything queued for donors' WeChat messages, as text."""
        import json

        from app.extensions import db
        from app.notifications.models import OutboxMessage

        with self.app.app_context():
            return json.dumps([m.payload for m in db.session.query(OutboxMessage)],
                              ensure_ascii=False)

    def seed_money(self) -> None:
        """A paid donation to a wish and an anonymous one, a disbursement with the secrets in its
        internal fields, and a reversal whose reason is the phone number (if the routes exist)."""
        rules = {r.rule for r in self.app.url_map.iter_rules()}
        if f"{API}/donations" not in rules:
            return
        fake = self.fake_wechatpay
        for body in ({"amount_fen": 5000, "wish_id": self.wish_ids["open"], "anonymous": False,
                      "receipt_requested": True},
                     {"amount_fen": 20000, "anonymous": True, "receipt_requested": False}):
            self.donation_ids.append(self._post(f"{API}/donations", self.owner, body)["id"])
        if fake is not None:
            for donation_id in self.donation_ids:
                headers, raw = fake.pay(donation_id)
                res = self.client.post(f"{API}/payments/wechatpay/notify", data=raw,
                                       headers=headers)
                assert res.status_code == 200, res.get_data(as_text=True)[:300]
        if f"{API}/disbursements" in rules and fake is not None:
            other_mod = self.actors.moderator()
            item = self._post(f"{API}/disbursements", self.mod, {
                "amount_fen": 3000, "purpose": "为受助老人购买轮椅一台",
                "wish_id": self.wish_ids["open"], "payee": SECRET_NAME,
                "note": f"{SECRET_ADDRESS} {SECRET_PHONE} {SECRET_ID_NUMBER}"})
            self._post(f"{API}/disbursements/{item['id']}/approve", other_mod)
        if f"{API}/ledger/reversals" in rules:
            entries = self.client.get(f"{API}/ledger/entries").get_json()["items"]
            self._post(f"{API}/ledger/reversals", self.mod, {
                "index": entries[-1]["index"], "reason": f"{SECRET_NAME} {SECRET_PHONE} 重复入账"})

    def collect(self) -> None:
        """Ids a donor can learn: ledger indexes, signed photo links from the proofs listing."""
        page = self.client.get(f"{API}/ledger/entries?limit=1000").get_json()
        self.ledger_indexes = [item["index"] for item in page["items"]]
        self.media_keys = []
        for claim_id in self.claim_ids.values():
            res = self.client.get(f"{API}/claims/{claim_id}/proofs", headers=self.owner.headers)
            assert res.status_code == 200
            for proof in res.get_json():
                for url in (proof["image_url"], proof["thumb_url"]):
                    if url:
                        self.media_keys.append(url.split("/media/", 1)[1])

    def tiles(self, *, levels: bool) -> list[str]:
        size = max(len(self.ledger_indexes), 1)
        names = ["000", f"000.p/{size}", "001", "x/../../etc"]
        return ([f"0/{n}" for n in names] + [f"1/{n}" for n in names]) if levels else names


@pytest.fixture
def world(app, client, actors, fake_wechatpay):
    w = CrawlWorld(app, client, actors, fake_wechatpay)
    w.seed_wishes()
    w.seed_claims(laden_photos())
    w.seed_texts()
    w.seed_money()
    w.seed_cases()
    w.collect()
    return w


# --- the crawl ---------------------------------------------------------------------------------

def assert_clean_any(res, where: str, *, schema_doc: bool = False) -> None:
    """assert_clean for JSON and text; for binary bodies (photos, tiles), the raw bytes."""
    if res.mimetype.startswith(("image/", "application/octet-stream")):
        data = res.get_data()
        for secret in SECRETS:
            assert secret.encode() not in data, f"{where}: bytes contain {secret!r}"
        headers = "\n".join(f"{k}: {v}" for k, v in res.headers.items())
        for secret in SECRETS:
            assert secret not in headers, f"{where}: headers contain {secret!r}"
        return
    assert_clean(res, where, schema_doc=schema_doc)
    if res.mimetype == "text/html":  # the public site's pages: no birth year in the text either
        assert not re.search(r"\b1950\b", res.get_data(as_text=True)), f"{where}: birth year"


def _paths(rule, world, *, staff_only: bool) -> list[str]:
    """The rule with its arguments filled: ids of every kind (staff-only routes: a bogus one)."""
    paths = [rule.rule]
    for name in sorted(rule.arguments):
        values = [BOGUS] if staff_only else ID_SOURCES[name](world)
        paths = [fill(p, name, v) for p in paths for v in values]
    return paths


def test_crawl_of_every_route_as_public_and_donors_shows_no_identity_nor_photo_metadata(
        app, client, world):
    gets = writes = 0
    statuses: dict[str, set[int]] = {}
    for method, rule in _routes(app):
        if method != "GET":
            continue
        staff_only = not _reachable(app, rule)
        schema_doc = rule.endpoint in DOCUMENTS
        paths = _paths(rule, world, staff_only=staff_only)
        for path in paths:
            for viewer in VIEWERS:
                res = client.get(path, headers=world.headers(viewer))
                assert_clean_any(res, f"{viewer} GET {path} -> {res.status_code}",
                                 schema_doc=schema_doc)
                statuses.setdefault(norm(rule.rule), set()).add(res.status_code)
                assert res.status_code < 500, (path, res.get_data(as_text=True)[:300])
                gets += 1
        # Queries with the secrets in them, once per route and viewer, on the first path.
        for viewer in VIEWERS:
            res = client.get(paths[0] + ECHO_QUERY, headers=world.headers(viewer))
            assert_clean_any(res, f"{viewer} GET {paths[0]}{ECHO_QUERY} -> {res.status_code}",
                             schema_doc=schema_doc)
            gets += 1
    # Lists and proofs with real parameters (the bare paths above are their 422s).
    size = len(world.ledger_indexes)
    for query in ("ledger/entries?start=0&limit=1000",
                  *(f"ledger/proof/inclusion?index={i}&tree_size={size}"
                    for i in world.ledger_indexes),
                  *(f"ledger/proof/consistency?first={n}&second={size}" for n in range(1, size)),
                  "wishes?limit=1", "me/claims?limit=1", "me/donations?limit=1"):
        for viewer in VIEWERS:
            res = client.get(f"{API}/{query}", headers=world.headers(viewer))
            assert_clean_any(res, f"{viewer} GET {query} -> {res.status_code}")
            assert res.status_code in (200, 401), (query, res.status_code)
            gets += 1
    _every_reachable_photo_is_a_bare_jpeg(client, world)
    _the_crawl_could_fail(client, world)
    disputed = client.get(f"{API}/claims/{world.claim_ids['delivered_png']}",
                          headers=world.owner.headers).get_json()
    assert disputed["last_dispute_reason"] == "照片看不清，请补拍一张"
    messages = world.outbox_payloads()
    assert "照片看不清" in messages
    for secret in SECRETS:
        assert secret not in messages, f"a WeChat message carries {secret!r}"
    # Writes last: some succeed (a donor's own release, a new claim) and change the world.
    for method, rule in _routes(app):
        if method not in WRITE_METHODS:
            continue
        staff_only = not _reachable(app, rule)
        paths = _paths(rule, world, staff_only=staff_only)
        paths = paths if staff_only else [paths[0], paths[-1]]  # a real id and a bogus one
        for path in paths:
            for viewer in VIEWERS:
                headers = {**world.headers(viewer), "Idempotency-Key": str(uuid.uuid4())}
                for send in _bodies(headers):
                    res = client.open(path, method=method, **send)
                    assert_clean_any(res, f"{viewer} {method} {path} -> {res.status_code}")
                    assert res.status_code < 500, (path, res.get_data(as_text=True)[:300])
                    writes += 1
    # The crawl reached real objects, not only 404s.
    for rule, expected in {f"{API}/wishes/<wish_id>": 200, f"{API}/claims/<claim_id>": 200,
                           f"{API}/claims/<claim_id>/proofs": 200,
                           f"{API}/media/<key>": 200, "/w/<wish_id>": 200, "/": 200,
                           "/ledger": 200, "/fund": 200, "/stats": 200,
                           "/assets/<name>": 200}.items():
        assert expected in statuses[rule], (rule, statuses[rule])
    if world.ledger_indexes:
        assert 200 in statuses[f"{API}/ledger/entries/<index>"]
    assert gets > 150 and writes > 100, (gets, writes)


def _bodies(headers: dict) -> list[dict]:
    malformed = f'{{"real_name": "{SECRET_NAME}", "phone": "{SECRET_PHONE}"'.encode()
    return [
        {"headers": headers, "data": malformed, "content_type": "application/json"},
        {"headers": {**headers, "Idempotency-Key": str(uuid.uuid4())},
         "json": beneficiary_payload()},
        {"headers": {**headers, "Idempotency-Key": str(uuid.uuid4())}},
    ]


def _the_crawl_could_fail(client, world) -> None:
    """The secrets really are in the world (staff see them), so the crawl can fail."""
    res = client.get(f"{API}/beneficiaries/{world.ben['id']}?reveal=true",
                     headers=world.cw.headers)
    with pytest.raises(AssertionError):
        assert_clean_any(res, "staff reveal")
    if world.donation_ids:
        listing = client.get(f"{API}/disbursements", headers=world.mod.headers)
        assert listing.status_code == 200
        with pytest.raises(AssertionError):
            assert_clean_any(listing, "the moderators' disbursements (payee, note)")


# --- served photos -------------------------------------------------------------------------------

def _every_reachable_photo_is_a_bare_jpeg(client, world) -> None:
    """Photos uploaded with GPS EXIF, XMP, ICC, IPTC, comments and trailing bytes come back,
    through the signed links of the donor's proofs listing, as JPEGs with none of it."""
    assert len(world.media_keys) == 2 * 3  # jpeg, png, webp: a full image and a thumbnail each
    for key in world.media_keys:
        res = client.get(f"{API}/media/{key}")
        assert res.status_code == 200 and res.mimetype == "image/jpeg", key
        assert_bare_jpeg(res.get_data(), key)


def test_the_jpeg_check_sees_what_it_must_refuse():
    laden = laden_photos()["jpeg"]
    with pytest.raises(AssertionError, match="after the EOI"):
        assert_bare_jpeg(laden, "laden upload")
    clean = encode(scene((64, 64)), "JPEG")
    assert_bare_jpeg(clean, "clean")
    for extra in (_iptc_block(), _segment(0xFE, b"comment"), _segment(0xE1, b"Exif\x00\x00")):
        with pytest.raises(AssertionError, match="APPn/COM"):
            assert_bare_jpeg(clean[:2] + extra + clean[2:], "one segment added")
