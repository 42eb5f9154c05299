"""Fill a migrated PostgreSQL database with a realistic 泉港区 load: staff, beneficiaries, wishes.

Rows go in through COPY (psycopg 3), so 100,000 wishes take seconds. Beneficiary identity columns
are left NULL: the feed and the public card never read them, and encrypting 30,000 rows would only
slow the set-up down. Most wishes are `open`; the rest are spread over every other state, with a
few hidden ones (consent withdrawn), so the partial feed indexes hold what they hold in real life.

    python bench/feed/populate.py postgresql://postgres@127.0.0.1:5432/wxy_bench_x --wishes 100000
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root, for `app`

from app.beneficiaries.models import CATEGORIES, LEVEL_RANK, category_mask  # noqa: E402
from app.divisions import NAMES, TOWNS as DIVISION_TOWNS  # noqa: E402
from app.types import new_id  # noqa: E402

# Towns and streets of 泉港区 (350505) with their statistical division codes: the app's one
# division table, so every wish lies in a town the pages can name.
TOWNS = {code: NAMES[code] for code in DIVISION_TOWNS}
# Weights: (value, weight). Shapes the data roughly like a county programme a few years in.
LEVELS = [("red", 10), ("orange", 20), ("yellow", 35), ("blue", 35)]
KINDS = [("goods", 60), ("service", 25), ("education", 15)]
STATUSES = [("open", 70), ("claimed", 7), ("delivered", 3), ("fulfilled", 10),
            ("pending_review", 3), ("draft", 2), ("rejected", 1), ("withdrawn", 4)]
SURNAMES = "陈林黄张李王吴刘蔡杨郑许谢洪郭邱曾廖赖徐周叶苏庄吕江何萧罗高潘简朱钟彭游詹胡施沈余卢梁赵颜柯翁魏孙戴范方宋邓杜"
ALIAS_SUFFIX = ["奶奶", "爷爷", "阿姨", "叔叔", "同学", "小朋友", "大姐", "伯伯"]
ITEMS = [
    ("goods", "一台电风扇", 15000), ("goods", "冬季棉被两床", 30000), ("goods", "一辆轮椅", 68000),
    ("goods", "新书包和文具", 12000), ("goods", "助听器一副", 120000), ("goods", "电饭煲", 20000),
    ("goods", "一张书桌", 45000), ("goods", "老花镜和台灯", 9000), ("goods", "一箱牛奶", 8000),
    ("service", "每周一次陪伴聊天", 0), ("service", "家中线路检修", 20000),
    ("service", "陪同到县医院复诊", 5000), ("service", "屋顶补漏", 80000),
    ("education", "一学期英语辅导", 60000), ("education", "暑期编程课", 90000),
    ("education", "钢琴启蒙课十节", 100000),
]
STORY_PARTS = [
    "家里只有两位老人相依为命，", "孩子的父亲常年在外务工，", "去年一场大病花光了积蓄，",
    "腿脚不便，很少出门，", "学习很努力，成绩在班里名列前茅，", "住的老房子一到雨天就漏水，",
    "平时靠低保和一点零工维持生活，", "希望能有好心人帮忙，", "社区工作人员多次上门走访，",
    "冬天屋里特别冷，", "视力越来越差，看书写字很吃力，", "很想和同学们一样参加课外班，",
]


def _pick(rng: random.Random, weighted: list[tuple[str, int]]) -> str:
    values, weights = zip(*weighted)
    return rng.choices(values, weights)[0]


def _village(rng: random.Random) -> str:
    town = rng.choice(list(TOWNS))
    # Villages are 2xx under a town, communities (居委会) 0xx.
    if rng.random() < 0.8:
        return town + f"2{rng.randint(1, 18):02d}"
    return town + f"0{rng.randint(1, 6):02d}"


def populate(url: str, wishes: int = 100_000, seed: int = 20261125) -> dict[str, int]:
    """Insert staff, beneficiaries and `wishes` wishes; return the count per status."""
    rng = random.Random(seed)
    now = datetime.now(timezone.utc)
    staff = _staff()
    caseworkers = [row for row in staff if row[1] == "caseworker"]
    moderator = next(row for row in staff if row[1] == "moderator")
    counts: dict[str, int] = {}
    with psycopg.connect(url) as conn:
        with conn.cursor() as cur:
            with cur.copy("COPY users (id, role, display_name, username, password_hash, active,"
                          " token_version, created_at) FROM STDIN") as copy:
                for row in staff:
                    copy.write_row((*row, None, True, 1, now - timedelta(days=400)))
            with cur.copy("COPY staff_regions (user_id, region_code) FROM STDIN") as copy:
                for user_id, _role, _name, username in caseworkers:
                    copy.write_row((user_id, username.split("-")[1]))
            beneficiaries = _beneficiaries(rng, max(1, wishes * 3 // 10), caseworkers, now)
            with cur.copy("COPY beneficiaries (id, region_code, alias, birth_year, categories,"
                          " level, created_by, created_at, updated_at, erased)"
                          " FROM STDIN") as copy:
                for ben in beneficiaries:
                    copy.write_row((ben["id"], ben["region"], ben["alias"], ben["birth_year"],
                                    json.dumps(ben["categories"]), ben["level"], ben["by"],
                                    ben["at"], ben["at"], False))
            with cur.copy("COPY wishes (id, beneficiary_id, author_id, region_code, title, story,"
                          " kind, item, estimated_value_fen, status, level, level_rank,"
                          " category_mask, hidden, reject_reason, approved_by, created_at,"
                          " updated_at, submitted_at, published_at, due_at, fulfilled_at)"
                          " FROM STDIN") as copy:
                for _ in range(wishes):
                    row = _wish(rng, rng.choice(beneficiaries), moderator[0], now)
                    counts[row[9]] = counts.get(row[9], 0) + 1
                    copy.write_row(row)
        conn.commit()
    return counts


def _staff() -> list[tuple[str, str, str, str]]:
    rows = [(new_id("usr"), "moderator", "审核员", "bench-moderator")]
    for code, name in TOWNS.items():
        rows.append((new_id("usr"), "caseworker", f"{name}协理员", f"bench-{code}"))
    return rows


def _beneficiaries(rng: random.Random, count: int, caseworkers: list, now: datetime) -> list:
    by_town = {username.split("-")[1]: user_id for user_id, _r, _n, username in caseworkers}
    result = []
    for _ in range(count):
        region = _village(rng)
        suffix = rng.choice(ALIAS_SUFFIX)
        age = {"奶奶": 78, "爷爷": 80, "同学": 14, "小朋友": 9}.get(suffix, 45) + rng.randint(-6, 8)
        categories = rng.sample(CATEGORIES, rng.choice((1, 1, 2, 2, 3)))
        result.append({
            "id": new_id("ben"), "region": region, "alias": rng.choice(SURNAMES) + suffix,
            "birth_year": now.year - age, "categories": categories,
            "level": _pick(rng, LEVELS), "by": by_town[region[:9]],
            "at": now - timedelta(days=rng.uniform(30, 720)),
        })
    return result


def _wish(rng: random.Random, ben: dict, moderator_id: str, now: datetime) -> tuple:
    kind = _pick(rng, KINDS)
    item, value = rng.choice([(i, v) for k, i, v in ITEMS if k == kind])
    status = _pick(rng, STATUSES)
    created = ben["at"] + timedelta(days=rng.uniform(0, 20))
    created = min(created, now - timedelta(hours=1))
    submitted = published = due = fulfilled = None
    if status != "draft":
        submitted = created + timedelta(hours=rng.uniform(1, 48))
    if status in ("open", "claimed", "delivered", "fulfilled", "withdrawn"):
        published = min(submitted + timedelta(hours=rng.uniform(1, 72)), now)
    if status in ("claimed", "delivered"):
        due = now + timedelta(hours=rng.uniform(1, 48))
    if status == "fulfilled":
        fulfilled = min(published + timedelta(days=rng.uniform(1, 30)), now)
    story = "".join(rng.sample(STORY_PARTS, 4)) + f"希望能得到{item}。"
    hidden = status == "withdrawn" and rng.random() < 0.25  # consent withdrawn
    return (
        new_id("wsh"), ben["id"], ben["by"], ben["region"], f"{ben['alias']}的心愿：{item}"[:60],
        story, kind, item, value + rng.randint(0, 20) * 100, status, ben["level"],
        LEVEL_RANK[ben["level"]], category_mask(ben["categories"]), hidden,
        "请补充说明" if status == "rejected" else None,
        moderator_id if published else None, created, published or submitted or created,
        submitted, published, due, fulfilled,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", help="postgresql:// URL of a migrated, empty database")
    parser.add_argument("--wishes", type=int, default=100_000)
    args = parser.parse_args()
    started = time.monotonic()
    counts = populate(args.url, args.wishes)
    print(f"inserted {sum(counts.values())} wishes in {time.monotonic() - started:.1f}s: "
          + ", ".join(f"{k}={v}" for k, v in sorted(counts.items())))


if __name__ == "__main__":
    main()
