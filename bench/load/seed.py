"""Fixtures for bench/load, made through the app's own service functions, so every row has the
history the auditor expects: transition audit rows, outbox rows, ledger entries.

`seed(app, ...)` runs in the orchestrator's process, in an app context on the throwaway database:

- the demo data set (`app.demo.seed`): staff bound to real 泉港区 division codes, ten
  beneficiaries at every urgency level, a wish in every state, one ledger entry;
- `wishes` open wishes: one per demo beneficiary with publication consent and item drafted by
  its caseworker, submitted and approved by a moderator through the services; the rest are
  copies of those (row and transition rows, new id, published earlier) put in with COPY;
- `fulfilled` of them taken all the way (a donor claims, proves with a photo the media job
  re-encodes in-process, the caseworker confirms), so the public ledger has entries to page;
- `donors` donor accounts (development WeChat login) with an access token each, one per
  simulated user; each holds `held` active claims at the start, on wishes from the cold end of
  the popularity order, so a user can upload a proof before it has won a claim of its own.

Returns what the load generator needs, as plain data (written to JSON by run.py).
"""
from __future__ import annotations

import random
import time
from io import BytesIO

from PIL import Image, ImageDraw, ImageFilter

ITEMS = [
    ("goods", "一台电风扇", 15000), ("goods", "冬季棉被两床", 30000), ("goods", "一辆轮椅", 68000),
    ("goods", "新书包和文具", 12000), ("goods", "助听器一副", 120000), ("goods", "电饭煲", 20000),
    ("goods", "一张书桌", 45000), ("goods", "老花镜和台灯", 9000), ("goods", "一箱牛奶", 8000),
    ("service", "每周一次陪伴聊天", 0), ("service", "家中线路检修", 20000),
    ("service", "陪同到区医院复诊", 5000), ("service", "屋顶补漏", 80000),
    ("education", "一学期英语辅导", 60000), ("education", "暑期编程课", 90000),
]
STORY_PARTS = [
    "家里只有两位老人相依为命，", "孩子的父亲常年在外务工，", "去年一场大病花光了积蓄，",
    "腿脚不便，很少出门，", "学习很努力，成绩在班里名列前茅，", "住的老房子一到雨天就漏水，",
    "平时靠低保和一点零工维持生活，", "社区工作人员多次上门走访，", "冬天屋里特别冷，",
]


def proof_jpeg(seed: int = 1, size: tuple[int, int] = (800, 600)) -> bytes:
    """A small real photo-like JPEG (~40-70 KB): gradient, shapes, blur, noise-free text area."""
    rng = random.Random(seed)
    width, height = size
    image = Image.new("RGB", size)
    pixels = image.load()
    for y in range(height):
        for x in range(0, width, 4):
            colour = (120 + x * 100 // width, 110 + y * 90 // height, 90 + (x + y) % 60)
            for dx in range(4):
                pixels[x + dx, y] = colour
    draw = ImageDraw.Draw(image)
    for _ in range(25):
        x, y = rng.randrange(width), rng.randrange(height)
        draw.ellipse((x, y, x + rng.randint(20, 160), y + rng.randint(20, 120)),
                     fill=tuple(rng.randrange(256) for _ in range(3)))
    draw.rectangle((260, 200, 540, 420), fill=(180, 60, 50))  # the parcel
    image = image.filter(ImageFilter.GaussianBlur(1.2))
    out = BytesIO()
    image.save(out, "JPEG", quality=82)
    return out.getvalue()


def seed(app, *, wishes: int, fulfilled: int, donors: int, held: int,
         seed_value: int = 20261125) -> dict:
    from sqlalchemy import func, select

    from app import demo
    from app.auth.models import User
    from app.auth.service import login_wechat
    from app.beneficiaries.models import Beneficiary
    from app.claims import proofs
    from app.claims.service import claim_wish, confirm_claim
    from app.extensions import db
    from app.ledger.models import LedgerEntry
    from app.wishes import service as wish_service

    rng = random.Random(seed_value)
    timings = {}
    with app.app_context():
        started = time.monotonic()
        demo.seed()
        timings["demo"] = time.monotonic() - started

        staff = {u.username: u for u in db.session.scalars(
            select(User).where(User.username.is_not(None)))}
        moderators = [staff["mod.chen"], staff["mod.lin"]]
        people = [b for b in db.session.scalars(select(Beneficiary))
                  if b.has_consent("publication") and b.consent_withdrawn_at is None]
        authors = {b.id: db.session.get(User, b.created_by) for b in people}
        regions = sorted({b.region_code[:9] for b in people})

        # Templates through the services (one per beneficiary and item), then copies of them
        # (row and transition history alike) with COPY: the services take 20-90 ms per wish on
        # this shared machine, and a run needs thousands.
        started = time.monotonic()
        templates: list[str] = []
        for n, (ben, (kind, item, value)) in enumerate(
                (b, it) for b in people for it in ITEMS):
            if len(templates) >= wishes:
                break
            story = "".join(rng.sample(STORY_PARTS, 3)) + f"希望能得到{item}。"
            wish = wish_service.create_wish(authors[ben.id], {
                "beneficiary_id": ben.id, "title": f"{ben.alias}的心愿：{item}"[:60],
                "story": story, "kind": kind, "item": item,
                "estimated_value_fen": value + rng.randint(0, 20) * 100})
            wish_service.submit_wish(authors[ben.id], wish.id)
            wish_service.approve_wish(moderators[n % 2], wish.id)
            templates.append(wish.id)
        timings["wishes"] = time.monotonic() - started
        started = time.monotonic()
        made = templates + _copy_wishes(db, templates, wishes - len(templates), rng)
        timings["wish_copies"] = time.monotonic() - started

        started = time.monotonic()
        tokens, donor_users = [], []
        for n in range(donors):
            response = login_wechat(f"dev:bench-donor-{n}")
            tokens.append(response["access_token"])
            donor_users.append(response["user"].id)
        timings["donors"] = time.monotonic() - started

        # Cold end of the popularity order: fulfilled ones first, then the held claims.
        rng.shuffle(made)
        started = time.monotonic()
        photo = proof_jpeg(seed_value)
        for n in range(fulfilled):
            wish_id = made.pop()
            donor = db.session.get(User, donor_users[n % len(donor_users)])
            claim = claim_wish(donor, wish_id)
            proof = proofs.submit_proof(donor, claim.id, photo, "已送到受助人家中")
            proofs.process_proof(proof.id)
            wish = db.session.get(type(claim.wish), wish_id)
            confirm_claim(db.session.get(User, wish.author_id), claim.id)
        timings["fulfilled"] = time.monotonic() - started

        started = time.monotonic()
        holdings: list[list[str]] = []
        for n in range(donors):
            donor = db.session.get(User, donor_users[n])
            holdings.append([claim_wish(donor, made.pop()).id for _ in range(held)])
        timings["held_claims"] = time.monotonic() - started

        ledger_size = db.session.execute(
            select(func.count()).select_from(LedgerEntry)).scalar_one()
        db.session.remove()
        db.engine.dispose()
    return {"open_wishes": made, "donors": [{"token": t, "claims": c}
                                            for t, c in zip(tokens, holdings)],
            "ledger_size": ledger_size, "timings": timings,
            "regions": regions}


def _copy_wishes(db, templates: list[str], count: int, rng: random.Random) -> list[str]:
    """`count` copies of random template wishes: every column and every transition row as the
    services wrote them, under a new id, published at a spread of times over the last weeks."""
    from datetime import timedelta

    from app.types import new_id

    if count <= 0:
        return []
    conn = db.session.connection().connection.driver_connection  # psycopg 3
    with conn.cursor() as cur:
        cur.execute("SELECT * FROM wishes WHERE id = ANY(%s)", (templates,))
        columns = [d.name for d in cur.description]
        rows = cur.fetchall()
        cur.execute("SELECT entity_id, from_status, to_status, action, actor_id, reason, at"
                    " FROM transitions WHERE entity_type = 'wish' AND entity_id = ANY(%s)"
                    " ORDER BY id", (templates,))
        history: dict[str, list[tuple]] = {}
        for row in cur.fetchall():
            history.setdefault(row[0], []).append(row[1:])
    col = {name: i for i, name in enumerate(columns)}
    made, copies = [], []
    for _ in range(count):
        row = list(rng.choice(rows))
        back = timedelta(minutes=rng.uniform(1, 60 * 24 * 21))
        source = row[col["id"]]
        row[col["id"]] = new_id("wsh")
        for name in ("created_at", "updated_at", "submitted_at", "published_at"):
            if row[col[name]] is not None:
                row[col[name]] = row[col[name]] - back
        copies.append((row, [(*h[:-1], h[-1] - back) for h in history[source]]))
        made.append(row[col["id"]])
    with conn.cursor() as cur:
        names = ", ".join(columns)
        with cur.copy(f"COPY wishes ({names}) FROM STDIN") as copy:
            for row, _ in copies:
                copy.write_row(row)
        with cur.copy("COPY transitions (entity_type, entity_id, from_status, to_status, action,"
                      " actor_id, reason, at) FROM STDIN") as copy:
            for row, steps in copies:
                for step in steps:
                    copy.write_row(("wish", row[col["id"]], *step))
    db.session.commit()
    return made
