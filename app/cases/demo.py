"""A month of finding-people demo data for 泉港区 (development only; called by app/demo.py).

Sixty fictional residents across the county's towns and villages, each with a year of modest
monthly self-paid medical spend from 医保, then, over the last month: medical-spend spikes and
large bills, long hospital stays, severe disability certificates (残联), a death in the household
(公安), unemployment registrations (人社) and grid workers' reports (网格). The rules raise their
alerts and visit tasks; caseworkers complete about half of them with the contract's outcomes
(an `enrolled` one records the person as a beneficiary with their consent) and have started some
of the others; four applications reach received, visiting, approved and refused. Everything goes
through the services (`ingest_signals` with a `SignalSource`, `start_task`, `complete_task`,
`submit_application`, `decide`).
"""
from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Callable

from sqlalchemy import func, select

from app.auth.models import User
from app.auth.scope import in_scope
from app.cases import applications
from app.cases.models import Alert, Signal, Task
from app.cases.signals import SignalSource, ingest_signals
from app.cases.tasks import complete_task, start_task
from app.extensions import db
from app.types import utcnow

TOWNS = ("350505001", "350505100", "350505101", "350505102", "350505103", "350505104",
         "350505106")
SURNAMES = "陈林黄张郑王李吴刘蔡庄郭洪许肖"
GIVEN = ("秀英", "美玉", "金水", "建国", "丽华", "志明", "国强", "淑珍", "玉兰", "明辉", "春生",
         "宝珠", "阿勇", "海燕", "文龙", "月娥", "清泉", "素梅", "永福", "桂香")
OUTCOMES = (("enrolled", "dibao"), ("enrolled", "temporary"), ("already_covered", None),
            ("wish_opened", None), ("not_eligible", None), ("declined", None),
            ("enrolled", "dibao_edge"), ("not_found", None))
# Public aliases of the people enrolled: no character of any demo name, so none holds a name.
ALIASES = ("独居老人", "困难户", "大病户", "老人家", "务农户")
SOURCES = {dept: SignalSource(client_id=f"demo-{dept}", department=dept, region_code="350505")
           for dept in ("medical_insurance", "disabled_federation", "public_security",
                        "human_resources", "grid")}


def _id_number(rng: random.Random) -> str:
    born = f"{rng.randint(1940, 1995)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
    body = "350505" + born + f"{rng.randint(0, 999):03d}"
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return body + "10X98765432"[sum(int(d) * w for d, w in zip(body, weights)) % 11]


def seed_cases(staff: dict[str, User], donor_for: Callable[[str, str], User],
               now: datetime | None = None, people: int = 60) -> list[str]:
    """Load the month; returns summary lines. `donor_for(name, key)` makes a demo donor."""
    rng = random.Random(13)
    now = now or utcnow()
    month_ago = now - timedelta(days=30)
    batches: dict[str, list[dict]] = {dept: [] for dept in SOURCES}
    serial = iter(range(1, 10**6))

    def signal(dept: str, kind: str, subject: dict, at: datetime, **data) -> None:
        batches[dept].append({"external_id": f"demo-{dept}-{next(serial):06d}", "kind": kind,
                              "subject": subject, "observed_at": at.isoformat(), "data": data})

    for n in range(people):
        town = TOWNS[n % len(TOWNS)]
        region = town + f"{200 + rng.randint(1, 12):03d}" if rng.random() < 0.8 else town
        subject = {"id_number": _id_number(rng), "region_code": region,
                   "name": rng.choice(SURNAMES) + rng.choice(GIVEN)}
        monthly = rng.randint(150, 900) * 100
        for month in range(12):  # the year before: steady, modest spend
            signal("medical_insurance", "medical_spend", subject,
                   month_ago - timedelta(days=30 * month + rng.randint(1, 25)),
                   self_paid_fen=int(monthly * rng.uniform(0.6, 1.4)), period_days=30)
        at = month_ago + timedelta(days=rng.randint(1, 29), hours=rng.randint(0, 10))
        roll = rng.random()
        if roll < 0.25:    # a spike: 3-6 times the usual month, still below 20,000 yuan
            signal("medical_insurance", "medical_spend", subject, at,
                   self_paid_fen=min(monthly * rng.randint(4, 7), 1_900_000), period_days=30)
        elif roll < 0.35:  # a large bill
            signal("medical_insurance", "medical_spend", subject, at,
                   self_paid_fen=rng.randint(2_000_000, 6_000_000), period_days=30)
        elif roll < 0.45:
            signal("medical_insurance", "hospitalization", subject, at,
                   days=rng.randint(15, 60))
        elif roll < 0.53:
            signal("disabled_federation", "disability_certified", subject, at,
                   grade=rng.choice((1, 2)))
        elif roll < 0.56:
            signal("public_security", "death_in_household", subject, at, relation="配偶")
        elif roll < 0.70:
            signal("human_resources", "unemployment_registered", subject, at)
        elif roll < 0.85:
            signal("grid", "grid_report", subject, at, note="独居，行动不便，需要关注")
        else:               # an ordinary month
            signal("medical_insurance", "medical_spend", subject, at,
                   self_paid_fen=monthly, period_days=30)

    for dept, items in batches.items():
        for start in range(0, len(items), 500):
            ingest_signals(SOURCES[dept], items[start:start + 500], now=now)

    caseworkers = [u for u in staff.values() if u.role == "caseworker"]
    tasks = list(db.session.execute(select(Task).where(Task.status == "open")
                                    .order_by(Task.created_at, Task.id)).scalars())
    for i, task in enumerate(tasks):
        worker = next(u for u in caseworkers if in_scope(u, task.region_code))
        if i % 2:  # about half are still to do, some of them in hand
            if i % 4 == 1:
                start_task(worker, task.id, now=now)
            continue
        outcome, kind = OUTCOMES[i // 2 % len(OUTCOMES)]
        complete_task(worker, task.id, outcome, "已入户走访，情况已记录", assistance_type=kind,
                      beneficiary=_enrolment(i) if outcome == "enrolled" else None, now=now)

    lines = _applications(staff, donor_for, rng, now)
    signals = db.session.scalar(select(func.count()).select_from(Signal))
    alerts = db.session.scalar(select(func.count()).select_from(Alert))
    open_, done = (db.session.scalar(select(func.count()).where(Task.status == s))
                   for s in ("open", "done"))
    started = db.session.scalar(select(func.count()).where(Task.status == "open",
                                                           Task.started_at.is_not(None)))
    return ["", f"Finding people: {signals} signals from 5 departments, {alerts} alerts, "
                f"tasks {open_} open ({started} in hand) / {done} done; " + lines]


def _enrolment(n: int) -> dict:
    """The beneficiary a visit enrols: alias, assessment, the person's own consent."""
    return {"alias": ALIASES[n % len(ALIASES)],
            "assessment": {"categories": ["illness", "livelihood"], "level": "orange"},
            "consents": [{"kind": "sensitive_data", "given_by": "self",
                          "notice_version": "2026-01"}]}


def _applications(staff: dict[str, User], donor_for, rng: random.Random, now: datetime) -> str:
    moderator = next(u for u in staff.values() if u.role == "moderator")
    village = "350505106203"  # 涂岭镇溪头村
    worker = next(u for u in staff.values()
                  if u.role == "caseworker" and in_scope(u, village))
    made = []
    for key, name, fate in (("apl1", "蔡淑珍", "received"), ("apl4", "庄秀英", "visiting"),
                            ("apl2", "洪永福", "approved"), ("apl3", "许月娥", "refused")):
        application = applications.submit_application(donor_for(f"申请人{name[0]}女士", key), {
            "applicant": {"name": name, "id_number": _id_number(rng), "phone": "13905950000",
                          "region_code": village},
            "for_self": True,
            "situation": {"categories": ["illness", "livelihood"],
                          "description": "家中主要劳动力患病，收入中断"},
            "consents": [{"kind": "data_check", "given_by": "self", "notice_version": "2026-01"}],
        }, now=now)
        if fate != "received":
            task = db.session.execute(select(Task).where(
                Task.application_id == application.id)).scalar_one()
            start_task(worker, task.id, now=now)  # received -> visiting
        if fate in ("approved", "refused"):
            complete_task(worker, task.id, "not_eligible" if fate == "refused" else "enrolled",
                          "已入户核实", assistance_type="dibao" if fate == "approved" else None,
                          beneficiary=_enrolment(len(made)) if fate == "approved" else None,
                          now=now)
            applications.decide(moderator, application.id, fate,
                                 assistance_type="dibao" if fate == "approved" else None,
                                 reason="家庭人均收入高于当地低保标准" if fate == "refused" else None,
                                 now=now)
        made.append(fate)
    return "applications: " + ", ".join(made)
