"""A small public world for the site's tests, made through the API: open wishes at every urgency
level in two towns, two fulfilled wishes (so the ledger has entries), a claimed one, and, when
the fund's routes exist, a paid donation and an approved disbursement."""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from tests.factories import SECRET_NAME, SECRET_PHONE

API = "/api/v1"
OTHER_VILLAGE_REAL = "350505106203"  # 涂岭镇溪头村


@dataclass
class SiteWorld:
    open_ids: dict[str, str] = field(default_factory=dict)     # level -> wish id
    fulfilled_ids: list[str] = field(default_factory=list)
    claimed_id: str = ""
    tuling_id: str = ""
    donation_ids: list[str] = field(default_factory=list)


def _post(client, path: str, who, body=None) -> dict:
    res = client.post(path, json=body, headers={**who.headers,
                                                 "Idempotency-Key": str(uuid.uuid4())})
    assert res.status_code in (200, 201), (path, res.get_data(as_text=True)[:300])
    return res.get_json()


def seed(app, client, actors, fake_wechatpay=None) -> SiteWorld:
    world = SiteWorld()
    cw, mod = actors.caseworker(), actors.moderator()
    donor = actors.donor("site-donor")
    for level, alias in (("red", "林阿婆"), ("orange", "陈阿伯"), ("yellow", "小杰同学"),
                         ("blue", "黄奶奶")):
        ben = actors.beneficiary(cw, alias=alias,
                                 assessment={"categories": ["elderly"], "level": level})
        world.open_ids[level] = actors.open_wish(cw, mod, beneficiary_id=ben["id"],
                                                 title=f"{alias}的心愿")["id"]
    tuling_cw = actors.caseworker([OTHER_VILLAGE_REAL[:9]])
    ben = actors.beneficiary(tuling_cw, alias="小雨", region_code=OTHER_VILLAGE_REAL,
                             birth_year=2010,
                             assessment={"categories": ["child", "education"], "level": "orange"})
    world.tuling_id = actors.open_wish(tuling_cw, mod, beneficiary_id=ben["id"], kind="education",
                                       title="一个新书包", item="书包和文具")["id"]
    ben = actors.beneficiary(cw, alias="郭师傅")
    for title in ("一台收音机", "一床棉被"):
        wish_id = actors.open_wish(cw, mod, beneficiary_id=ben["id"], title=title)["id"]
        actors.fulfil(donor, cw, wish_id)
        world.fulfilled_ids.append(wish_id)
    world.claimed_id = actors.open_wish(cw, mod, beneficiary_id=ben["id"], title="一袋大米")["id"]
    actors.claim(donor, world.claimed_id)
    _money(app, client, actors, donor, world, fake_wechatpay)
    return world


def _money(app, client, actors, donor, world: SiteWorld, fake) -> None:
    rules = {r.rule for r in app.url_map.iter_rules()}
    if f"{API}/donations" not in rules or fake is None:
        return
    for body in ({"amount_fen": 5000, "wish_id": world.open_ids["red"], "anonymous": False,
                  "receipt_requested": False},
                 {"amount_fen": 20000, "anonymous": True, "receipt_requested": False}):
        donation_id = _post(client, f"{API}/donations", donor, body)["id"]
        headers, raw = fake.pay(donation_id)
        res = client.post(f"{API}/payments/wechatpay/notify", data=raw, headers=headers)
        assert res.status_code == 200, res.get_data(as_text=True)[:300]
        world.donation_ids.append(donation_id)
    if f"{API}/disbursements" in rules:
        first, second = actors.moderator(), actors.moderator()
        item = _post(client, f"{API}/disbursements", first, {
            "amount_fen": 3000, "purpose": "为受助老人购买轮椅一台",
            "wish_id": world.open_ids["orange"], "payee": SECRET_NAME,
            "note": f"内部备注 {SECRET_PHONE}"})
        _post(client, f"{API}/disbursements/{item['id']}/approve", second)

