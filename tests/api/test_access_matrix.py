"""The access matrix: for every route, what each kind of caller gets.

One row per route (and per object state where that changes the answer). Columns are the callers:
  public  no token              donor   a WeChat donor
  cw_in   caseworker of 界山镇 (the objects' town)    cw_out  caseworker of 涂岭镇 (another town)
  mod     moderator             admin   staff-account administrator
Outcomes: A allowed (2xx), R permanent redirect (308), U 401 invalid_token, F 403 forbidden,
N 404 not_found (out of scope, exactly as if the object did not exist), V 422 validation_error.

A route in `app.url_map` without a row here fails `test_every_route_has_a_row_in_the_matrix`,
so a new route cannot ship without a stated policy.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable

import pytest

from app.auth.models import ROLES
from miniprogram_api.policy import PARTNER_CLIENT, PUBLIC, allow
from tests.factories import OTHER_TOWN, PASSWORD, TOWN, beneficiary_payload, wish_payload

CALLERS = ("public", "donor", "cw_in", "cw_out", "mod", "admin")
OUTCOMES = {"U": (401, "invalid_token"), "F": (403, "forbidden"), "N": (404, "not_found"),
            "V": (422, "validation_error")}
SPARE_STAFF = "matrix-spare"
IGNORED_METHODS = {"HEAD", "OPTIONS"}


@dataclass(frozen=True)
class Row:
    method: str
    rule: str
    outcomes: str           # one letter per caller, in CALLERS order
    target: str | None = None   # what the path's <id> is: ben, draft, pending, open, staff
    body: Any = None            # a dict, or a callable(world) -> dict
    variant: str = ""
    multipart: bool = False     # send `body` as multipart/form-data
    idempotent: bool = False    # send a fresh Idempotency-Key

    def expected(self) -> dict[str, str]:
        letters = self.outcomes.split()
        assert len(letters) == len(CALLERS), self
        return dict(zip(CALLERS, letters))


def _new_wish_body(world) -> dict:
    return wish_payload(world.make("ben"))


P = "/api/v1"
#                                                      public donor cw_in cw_out mod admin
MATRIX = [
    Row("GET", f"{P}/healthz",                            "A A A A A A"),
    Row("GET", f"{P}/readyz",                             "A A A A A A"),
    Row("POST", f"{P}/auth/wechat",                       "A A A A A A",
        body={"code": "dev:matrix-donor"}),
    Row("POST", f"{P}/auth/staff",                        "A A A A A A",
        body={"username": SPARE_STAFF, "password": PASSWORD}),
    Row("GET", f"{P}/me",                                 "U A A A A A"),
    Row("PATCH", f"{P}/me",                               "U A A A A A",
        body={"display_name": "陈晓明"}),
    Row("GET", f"{P}/staff",                              "U F F F F A"),
    Row("PATCH", f"{P}/staff/<user_id:user_id>",          "U F F F F A",
        target="staff", body={"active": True}),
    # Creating in a region outside one's scope is refused outright (the region is the caller's
    # own input, not an object they are probing for).
    Row("POST", f"{P}/beneficiaries",                     "U F A F F F",
        body=lambda world: beneficiary_payload()),
    Row("GET", f"{P}/beneficiaries",                      "U F A A A F"),
    Row("GET", f"{P}/beneficiaries/<ben_id>",             "U F A N A F", target="ben"),
    Row("GET", f"{P}/beneficiaries/<ben_id>/access-log",  "U F A N A F", target="ben"),
    Row("POST", f"{P}/beneficiaries/<ben_id>/withdraw-consent", "U F A N A F", target="ben"),
    Row("GET", f"{P}/wishes",                             "A A A A A A"),
    # A beneficiary of another town named in the body reads as one that does not exist (422).
    Row("POST", f"{P}/wishes",                            "U F A V F F", body=_new_wish_body),
    Row("GET", f"{P}/wishes/<wish_id>",                   "A A A A A A", target="open",
        variant="published"),
    Row("GET", f"{P}/wishes/<wish_id>",                   "N N A N A A", target="draft",
        variant="draft"),
    Row("GET", f"{P}/wishes/<wish_id>",                   "N N A N A A", target="pending",
        variant="pending review"),
    Row("PATCH", f"{P}/wishes/<wish_id>",                 "U F A N F F", target="draft",
        body={"title": "一副老花镜"}),
    Row("POST", f"{P}/wishes/<wish_id>/submit",           "U F A N F F", target="draft"),
    Row("POST", f"{P}/wishes/<wish_id>/approve",          "U F F F A F", target="pending"),
    Row("POST", f"{P}/wishes/<wish_id>/reject",           "U F F F A F", target="pending",
        body={"reason": "材料不全"}),
    Row("POST", f"{P}/wishes/<wish_id>/withdraw",         "U F A N A F", target="open",
        body={"reason": "已由其他渠道解决"}),
    Row("GET", f"{P}/wishes/<wish_id>/transitions",       "U F A N A F", target="draft"),
    Row("GET", f"{P}/staff/wishes",                       "U F A A A F"),
    Row("GET", f"{P}/moderation/wishes",                  "U F F F A F"),
    # Claims: the target claim belongs to `donor`; `other_claim` to another donor.
    Row("POST", f"{P}/wishes/<wish_id>/claims",           "U A F F F F", target="open",
        idempotent=True),
    Row("GET", f"{P}/me/claims",                          "U A F F F F"),
    Row("GET", f"{P}/claims/<claim_id>",                  "U A A N A F", target="claim"),
    Row("GET", f"{P}/claims/<claim_id>",                  "U N A N A F", target="other_claim",
        variant="another donor's"),
    Row("POST", f"{P}/claims/<claim_id>/release",         "U A F F F F", target="claim"),
    Row("POST", f"{P}/claims/<claim_id>/release",         "U N F F F F", target="other_claim",
        variant="another donor's"),
    Row("POST", f"{P}/claims/<claim_id>/confirm",         "U F A N F F", target="delivered"),
    Row("POST", f"{P}/claims/<claim_id>/dispute",         "U F A N F F", target="delivered",
        body={"reason": "照片看不清"}),
    Row("POST", f"{P}/claims/<claim_id>/proofs",          "U A F F F F", target="claim",
        body=lambda world: world.photo_form(), multipart=True, idempotent=True),
    Row("POST", f"{P}/claims/<claim_id>/proofs",          "U N F F F F", target="other_claim",
        body=lambda world: world.photo_form(), multipart=True, idempotent=True,
        variant="another donor's"),
    Row("GET", f"{P}/claims/<claim_id>/proofs",           "U A A N A F", target="claim"),
    # A signed link is the credential: anyone holding one may fetch until it expires.
    Row("GET", f"{P}/media/<path:key>",                   "A A A A A A", target="media"),
    # The open ledger is public by design: anyone may read and verify it.
    Row("GET", f"{P}/ledger/checkpoint",                  "A A A A A A"),
    Row("GET", f"{P}/ledger/key",                         "A A A A A A"),
    Row("GET", f"{P}/ledger/entries",                     "A A A A A A"),
    Row("GET", f"{P}/ledger/entries/<int:index>",         "A A A A A A", target="ledger_entry"),
    # Without their query parameters the proofs are refused for everyone alike (never 401/403).
    Row("GET", f"{P}/ledger/proof/inclusion",             "V V V V V V"),
    Row("GET", f"{P}/ledger/proof/consistency",           "V V V V V V"),
    # The same ledger as a C2SP tlog-tiles log for mirrors; the checkpoint row needs one signed
    # (the /ledger/checkpoint row above signs on demand), the tiles a covered partial tile.
    Row("GET", f"{P}/ledger/tlog/checkpoint",             "A A A A A A"),
    Row("GET", f"{P}/ledger/tlog/tile/<path:tile>",       "A A A A A A", target="tlog_tile"),
    Row("GET", f"{P}/ledger/tlog/tile/entries/<path:bundle>", "A A A A A A",
        target="tlog_bundle"),
    Row("GET", f"{P}/stats",                              "A A A A A A"),
    Row("GET", f"{P}/me/notifications",                   "U F A A A A"),
    # The target is a notification in cw_in's inbox: anyone else's reads as missing.
    Row("POST", f"{P}/me/notifications/<notification_id>/read", "U F A N N N", target="note"),
    Row("GET", f"{P}/me/subscriptions",                   "U A F F F F"),
    Row("POST", f"{P}/me/subscriptions",                  "U A F F F F",
        body={"template_ids": ["tmpl-matrix"], "accepted": ["tmpl-matrix"]}),
    # The 505 fund. A donation target belongs to `donor`; `other_donation` to another donor.
    Row("POST", f"{P}/donations",                         "U A F F F F", idempotent=True,
        body={"amount_fen": 100, "anonymous": True, "receipt_requested": False}),
    Row("GET", f"{P}/donations/<donation_id>",            "U A F F A F", target="donation"),
    Row("GET", f"{P}/donations/<donation_id>",            "U N F F A F", target="other_donation",
        variant="another donor's"),
    Row("GET", f"{P}/me/donations",                       "U A F F F F"),
    # WeChat Pay calls it with no token: a correctly signed notice is what it checks, not who.
    Row("POST", f"{P}/payments/wechatpay/notify",         "A A A A A A",
        body=lambda world: world.payment_notice()),
    Row("POST", f"{P}/disbursements",                     "U F F F A F",
        body=lambda world: world.funded({"amount_fen": 100, "purpose": "购买轮椅"})),
    Row("GET", f"{P}/disbursements",                      "U F F F A F"),
    Row("GET", f"{P}/disbursements/<disbursement_id>",    "U F F F A F", target="disbursement"),
    Row("POST", f"{P}/disbursements/<disbursement_id>/approve", "U F F F A F",
        target="disbursement"),
    Row("POST", f"{P}/disbursements/<disbursement_id>/reject", "U F F F A F",
        target="disbursement", body={"reason": "材料不全"}),
    Row("POST", f"{P}/ledger/reversals",                  "U F F F A F",
        body=lambda world: {"index": int(world.make("ledger_entry")), "reason": "录入有误"}),
    # Partner systems (医保, 残联, ...): the token endpoint authenticates the client itself (HTTP
    # Basic, replacing whatever the caller sent); only a partner token may post signals (the
    # partner column: test_a_partner_token_is_refused_everywhere_but_on_its_own_routes).
    Row("POST", f"{P}/oauth/token",                       "A A A A A A",
        body=lambda world: world.token_request()),
    Row("POST", f"{P}/signals",                           "U F F F F F", body={"items": []}),
    # Finding people: the task target is a visit task in 界山镇; the application one is under
    # review (its verify task done), so a moderator may decide it.
    Row("GET", f"{P}/tasks",                              "U F A A A A"),
    Row("POST", f"{P}/tasks/<task_id>/complete",          "U F A N A F", target="task",
        body={"outcome": "not_found", "note": "多次上门无人"}),
    Row("POST", f"{P}/tasks/<task_id>/start",             "U F A N A A", target="task"),
    Row("GET", f"{P}/alert-rules",                        "U F A A A A"),
    Row("PUT", f"{P}/alert-rules",                        "U F F F F A",
        body=lambda world: {"rules": world.default_rules()}),
    Row("GET", f"{P}/cases/stats",                        "U F A A A A"),
    Row("POST", f"{P}/applications",                      "U A F F F F",
        body=lambda world: world.application_body()),
    Row("GET", f"{P}/me/applications",                    "U A F F F F"),
    Row("POST", f"{P}/applications/<application_id>/decision", "U F F F A F",
        target="application", body={"decision": "refused", "reason": "家庭收入超过标准"}),
    # The public site: HTML pages and their content-hashed files, the same for everyone.
    Row("GET", "/",                                       "A A A A A A"),
    Row("GET", "/w/<wish_id>",                            "A A A A A A", target="open"),
    Row("GET", "/ledger",                                 "A A A A A A"),
    Row("GET", "/fund",                                   "A A A A A A"),
    Row("GET", "/stats",                                  "A A A A A A"),
    Row("GET", "/assets/<path:name>",                     "A A A A A A", target="asset"),
    # The root health paths: a 308 to the ops routes under /api/v1 above, for everyone.
    Row("GET", "/healthz",                                "R R R R R R"),
    Row("GET", "/readyz",                                 "R R R R R R"),
]


def _exempt(endpoint: str) -> bool:
    """Not our routes: static files and the OpenAPI document and its UI (public by nature)."""
    return endpoint == "static" or endpoint.startswith("api-docs.")


def _routes(app) -> set[tuple[str, str]]:
    return {(method, rule.rule) for rule in app.url_map.iter_rules() if not _exempt(rule.endpoint)
            for method in rule.methods - IGNORED_METHODS}


class World:
    """The callers (logged in once) and fresh objects in 界山镇, made through the API."""

    def __init__(self, app, actors) -> None:
        from app.auth.service import create_staff

        self.app = app
        self.actors = actors
        self.cw_in = actors.caseworker([TOWN])
        self.cw_out = actors.caseworker([OTHER_TOWN])
        self.mod = actors.moderator()
        self.admin = actors.admin()
        self.donor = actors.donor()
        with app.app_context():
            self.spare_staff_id = create_staff(SPARE_STAFF, "caseworker", PASSWORD, [TOWN]).id

    def headers(self, caller: str) -> dict[str, str]:
        return {} if caller == "public" else getattr(self, caller).headers

    def make(self, target: str) -> str:
        if target == "staff":
            return self.spare_staff_id
        if target == "note":
            return self._note()
        if target == "ben":
            return self.actors.beneficiary(self.cw_in)["id"]
        if target == "ledger_entry":
            return self._ledger_entry()
        if target == "asset":
            return self.app.extensions["site_assets"].url_name("site.css")
        if target in ("tlog_tile", "tlog_bundle"):
            return self._tlog_tile(target)
        if target in ("donation", "other_donation"):
            return self._donation(self.donor if target == "donation" else self.actors.donor())
        if target == "disbursement":
            return self._disbursement()
        if target == "task":
            return self._visit_task()
        if target == "application":
            return self._reviewed_application()
        if target in ("claim", "other_claim", "delivered", "media"):
            return self._claim_target(target)
        build: dict[str, Callable[[], dict]] = {
            "draft": lambda: self.actors.draft_wish(self.cw_in),
            "pending": lambda: self.actors.submitted_wish(self.cw_in),
            "open": lambda: self.actors.open_wish(self.cw_in, self.mod),
        }
        return build[target]()["id"]

    def partner(self) -> tuple[str, str]:
        if not hasattr(self, "_partner"):
            from tests.partners.helpers import create_client_cli

            self._partner = create_client_cli(self.app)
        return self._partner

    def token_request(self) -> tuple[dict, bytes]:
        """(headers, raw form) of a good client-credentials token request."""
        from tests.partners.helpers import basic

        return ({**basic(*self.partner()), "Content-Type": "application/x-www-form-urlencoded"},
                b"grant_type=client_credentials")

    def partner_headers(self) -> dict[str, str]:
        from tests.partners.helpers import bearer, get_token

        res = get_token(self.actors.client, *self.partner())
        assert res.status_code == 200, res.get_json()
        return bearer(res.get_json()["access_token"])

    def photo_form(self) -> dict:
        import io

        from tests.media.conftest import encode, scene

        return {"note": "送到了", "photo": (io.BytesIO(encode(scene((320, 240)), "JPEG")), "p.jpg")}

    def _claim_target(self, target: str) -> str:
        import uuid

        from app.claims.proofs import links, process_proof
        from app.extensions import db
        from app.claims.models import Proof

        owner = self.donor if target != "other_claim" else self.actors.donor()
        wish = self.actors.open_wish(self.cw_in, self.mod)
        claim_id = self.actors.client.post(
            f"/api/v1/wishes/{wish['id']}/claims",
            headers={**owner.headers, "Idempotency-Key": str(uuid.uuid4())}).get_json()["id"]
        if target in ("claim", "other_claim"):
            return claim_id
        res = self.actors.client.post(f"/api/v1/claims/{claim_id}/proofs", data=self.photo_form(),
                                      content_type="multipart/form-data",
                                      headers={**owner.headers, "Idempotency-Key": str(uuid.uuid4())})
        assert res.status_code == 201, res.get_json()
        with self.app.app_context():  # as the media worker would (a confirm waits for it)
            process_proof(res.get_json()["id"])
            url = links(db.session.get(Proof, res.get_json()["id"]))["image_url"]
        if target == "delivered":
            return claim_id
        return url[len("/api/v1/media/"):]

    # --- finding people ----------------------------------------------------------------------

    def default_rules(self) -> dict:
        from app.cases.rules import DEFAULT_RULES

        return DEFAULT_RULES

    def application_body(self) -> dict:
        from tests.cases.helpers import application_payload

        return application_payload()

    def _visit_task(self) -> str:
        from app.cases.models import Task
        from app.extensions import db
        from tests.cases.helpers import ingest, item, local, subject_id

        now = local("2026-11-10 10:00")
        answer = ingest(self.app, [item(at=now, id_no=subject_id(), self_paid_fen=2_500_000)],
                        now=now)[0]
        with self.app.app_context():
            return db.session.query(Task).filter_by(alert_id=answer["alert_id"]).one().id

    def _reviewed_application(self) -> str:
        from app.cases.models import Task
        from app.extensions import db
        from tests.cases.helpers import application_payload

        res = self.actors.client.post("/api/v1/applications", json=application_payload(),
                                      headers=self.actors.donor().headers)
        assert res.status_code == 201, res.get_json()
        with self.app.app_context():
            task_id = db.session.query(Task).filter_by(application_id=res.get_json()["id"]).one().id
        done = self.actors.client.post(f"/api/v1/tasks/{task_id}/complete",
                                       headers=self.cw_in.headers,
                                       json={"outcome": "not_eligible", "note": "核实完毕"})
        assert done.status_code == 200, done.get_json()
        return res.get_json()["id"]

    # --- the 505 fund ------------------------------------------------------------------------

    def _donation(self, owner, amount_fen: int = 100) -> str:
        import uuid

        res = self.actors.client.post(
            "/api/v1/donations", json={"amount_fen": amount_fen, "anonymous": True,
                                       "receipt_requested": False},
            headers={**owner.headers, "Idempotency-Key": str(uuid.uuid4())})
        assert res.status_code == 201, res.get_json()
        return res.get_json()["id"]

    def payment_notice(self) -> tuple[dict, bytes]:
        """(headers, body) of a correctly signed payment notification for a new donation."""
        return self.wechatpay.pay(self._donation(self.donor))

    def funded(self, body: dict) -> dict:
        """Pay enough into the fund for `body`'s amount first."""
        headers, notice = self.wechatpay.pay(self._donation(self.donor, body["amount_fen"]))
        res = self.actors.client.post("/api/v1/payments/wechatpay/notify", data=notice,
                                      headers=headers)
        assert res.status_code == 200, res.get_json()
        return body

    def _disbursement(self) -> str:
        """A pending disbursement requested by another moderator (so `mod` may approve it)."""
        if not hasattr(self, "mod2"):
            self.mod2 = self.actors.moderator()
        res = self.actors.client.post("/api/v1/disbursements", headers=self.mod2.headers,
                                      json=self.funded({"amount_fen": 100, "purpose": "购买棉被"}))
        assert res.status_code == 201, res.get_json()
        return res.get_json()["id"]

    def _tlog_tile(self, target: str) -> str:
        """The first level-0 tile (or its entry bundle) of a freshly signed checkpoint, as the
        part of its tlog path after tile/ (or tile/entries/)."""
        from app.ledger import log, tiles

        self._ledger_entry()
        with self.app.app_context():
            log.checkpoint()
            width = min(tiles.published_size(), tiles.WIDTH)
        tile = tiles.Tile(0 if target == "tlog_tile" else None, 0, width)
        return tile.path.split("/", 2)[2] if tile.level is None else tile.path.split("/", 1)[1]

    def _ledger_entry(self) -> str:
        import secrets
        from datetime import datetime, timezone

        from app.extensions import db
        from app.ledger import entries, log

        fields = dict(wish_id=None, town=None, item="书包", value_fen=100,
                      at=datetime(2026, 1, 1, tzinfo=timezone.utc))
        with self.app.app_context():
            index = log.append("in_kind_fulfilment", entries.entry("in_kind_fulfilment", **fields),
                               "matrix", secrets.token_hex(8))
            db.session.commit()
        return str(index)

    def _note(self) -> str:
        import secrets

        from app.extensions import db
        from app.notifications.models import InboxNotification
        from app.notifications.service import notify_staff

        key = f"matrix-{secrets.token_hex(8)}"
        with self.app.app_context():
            notify_staff([self.cw_in.id], "proof_submitted", "送达凭证待确认", "请核实。", {}, key)
            db.session.commit()
            return db.session.execute(db.select(InboxNotification.id).where(
                InboxNotification.dedupe_key == f"{key}:{self.cw_in.id}")).scalar_one()


def _path(rule: str, object_id: str | None) -> str:
    if "<" not in rule:
        return rule
    head, _, rest = rule.partition("<")
    return head + object_id + rest.partition(">")[2]


def _call(client, world: World, row: Row, caller: str, object_id: str | None):
    import uuid

    body = row.body(world) if callable(row.body) else row.body
    kwargs = {"headers": dict(world.headers(caller))}
    if row.idempotent:
        kwargs["headers"]["Idempotency-Key"] = str(uuid.uuid4())
    if body is not None and row.multipart:
        kwargs.update(data=body, content_type="multipart/form-data")
    elif isinstance(body, tuple):  # (headers, raw bytes): a signed payment notification
        kwargs["headers"].update(body[0])
        kwargs["data"] = body[1]
    elif body is not None:
        kwargs["json"] = body
    return client.open(_path(row.rule, object_id), method=row.method, **kwargs)


def _mismatch(row: Row, caller: str, want: str, res) -> str | None:
    got = res.status_code
    body = res.get_json(silent=True)
    code = body.get("code") if isinstance(body, dict) else None
    if want == "A":
        if 200 <= got < 300:
            return None
    elif want == "R":
        if got == 308:
            return None
    elif (got, code) == OUTCOMES[want] and res.mimetype == "application/problem+json":
        return None
    wanted = {"A": "2xx", "R": "308"}.get(want) or "%s %s" % OUTCOMES[want]
    return f"{row.method} {row.rule} {row.variant} as {caller}: want {wanted}, got {got} {code}"


def test_every_route_answers_each_caller_as_the_matrix_says(client, app, actors, monkeypatch,
                                                           fake_wechatpay):
    # One donor owns many claims here; the active-claim limit is tested on its own elsewhere.
    monkeypatch.setitem(app.config, "CLAIM_ACTIVE_LIMIT", 1000)
    # ... and many requests of one caller in a minute; abuse limits: tests/api/test_rate_limits.py
    for name in [n for n in app.config if n.startswith("RATELIMIT_") and n.endswith(
            ("_USER", "_ADDRESS", "_USERNAME"))]:
        monkeypatch.setitem(app.config, name, "100000/minute")
    world = World(app, actors)
    world.wechatpay = fake_wechatpay
    mismatches = []
    for row in MATRIX:
        for caller, want in row.expected().items():
            object_id = world.make(row.target) if row.target else None
            res = _call(client, world, row, caller, object_id)
            problem = _mismatch(row, caller, want, res)
            if problem:
                mismatches.append(problem)
            elif want == "N":
                # Out of scope must read exactly like an object that does not exist.
                ghost = _call(client, world, row, caller, object_id[:-4] + "zzzz")
                if (ghost.status_code, ghost.get_json()) != (res.status_code, res.get_json()):
                    mismatches.append(f"{row.method} {row.rule} as {caller}: out-of-scope 404 "
                                      f"differs from a missing object's {ghost.get_json()}")
    assert not mismatches, "\n".join(mismatches)


def test_a_partner_token_is_refused_everywhere_but_on_its_own_routes(client, app, actors,
                                                                    monkeypatch):
    """The partner column: a partner system's token is 403 on every route for people, passes
    on public ones as no token would, and reaches the routes that allow PARTNER_CLIENT."""
    from types import SimpleNamespace

    monkeypatch.setitem(app.config, "CLAIM_ACTIVE_LIMIT", 1000)
    for name in [n for n in app.config if n.startswith("RATELIMIT_")]:
        monkeypatch.setitem(app.config, name, "100000/minute")
    world = World(app, actors)
    partner = world.partner_headers()
    endpoints = {(method, rule.rule): rule.endpoint for rule in app.url_map.iter_rules()
                 for method in rule.methods}
    mismatches = []
    for row in MATRIX:
        access = app.view_functions[endpoints[(row.method, row.rule)]].__access__
        if PUBLIC in access:
            continue  # what a public route answers depends on its state, not on the partner
        want = "A" if PARTNER_CLIENT in access else "F"
        object_id = None
        if want == "F":  # refused before the path's object or the body is looked at
            row = replace(row, body=None, multipart=False)
            # (a path converter checks the id's shape before the policy runs)
            object_id = world.make("staff") if row.target == "staff" else "obj_doesnotmatter"
        elif row.target:
            object_id = world.make(row.target)
        world.partner_caller = SimpleNamespace(headers=partner)
        res = _call(client, world, row, "partner_caller", object_id)
        problem = _mismatch(row, "partner", want, res)
        if problem:
            mismatches.append(problem)
    assert not mismatches, "\n".join(mismatches)


def test_every_route_has_a_row_in_the_matrix(app):
    table = {(row.method, row.rule) for row in MATRIX}
    routes = _routes(app)

    assert not routes - table, f"routes with no stated access policy: {sorted(routes - table)}"
    assert not table - routes, f"matrix rows for routes that no longer exist: {table - routes}"


def test_matrix_rows_are_well_formed():
    for row in MATRIX:
        assert set(row.expected().values()) <= {"A", "R", *OUTCOMES}, row
        assert ("<" in row.rule) == (row.target is not None), row


def test_every_view_declares_an_access_policy(app):
    known = set(ROLES) | {PUBLIC, PARTNER_CLIENT}
    for endpoint, view in app.view_functions.items():
        if _exempt(endpoint):
            continue
        access = getattr(view, "__access__", None)
        assert access, f"{endpoint} has no __access__ policy (use @allow(...))"
        assert access <= known, f"{endpoint} names unknown roles {access - known}"


def test_route_without_a_policy_is_refused_to_everyone(app_config, actors):
    from app import create_app

    other = create_app(app_config)
    other.add_url_rule("/api/v1/test-only/no-policy", "no_policy", lambda: {"secret": 1})
    other.add_url_rule("/api/v1/test-only/admins", "admins_only",
                       allow("admin")(lambda: {"ok": 1}))
    admin = actors.admin()
    client = other.test_client()

    for headers in ({}, admin.headers):
        res = client.get("/api/v1/test-only/no-policy", headers=headers)
        assert res.status_code == 403 and res.get_json()["code"] == "forbidden"
        assert "secret" not in res.get_data(as_text=True)
    # The same app serves a route that does state its policy: the refusal above is the policy's.
    assert client.get("/api/v1/test-only/admins", headers=admin.headers).status_code == 200


@pytest.mark.parametrize("path", ["/api/v1/openapi.json", "/api/v1/docs"])
def test_openapi_document_and_its_page_are_public(client, path):
    assert client.get(path).status_code == 200
