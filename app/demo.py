"""Demo data: a small, realistic 泉港区 (350505) to try every flow at once (development only).

`seed()` (`flask --app wsgi demo seed`) makes staff accounts bound to real division codes, records
beneficiaries at every urgency level and in all eight assessment categories (one of them a child
under 14, with a guardian's consent), and takes wishes through the lifecycle to every state that
exists: draft, pending_review, open, rejected, withdrawn, and — through demo donors' claims, a
generated delivery photo and a caseworker's confirmation — claimed, delivered and fulfilled. The
505 fund gets one paid money donation (settled as a WeChat Pay notification would settle it) and
one disbursement requested by one moderator and approved by the other.

Everything goes through the service functions, exactly as the API would, so consents, transition
audit rows and encrypted identity fields are all real. Every person below is fictional.
"""
from __future__ import annotations

from collections import Counter

from flask import current_app
from sqlalchemy import func, select

from app.auth.models import User
from app.auth.service import create_staff
from app.beneficiaries.models import Beneficiary
from app.beneficiaries.service import create_beneficiary
from app.divisions import NAMES, full_name
from app.errors import Conflict, Forbidden
from app.extensions import db
from app.types import utcnow
from app.uow import unit_of_work
from app.wishes import service as wishes
from app.wishes.models import STATUSES, Wish

DEMO_PASSWORD = "quangang-demo-2026"
NOTICE = "2026-01"

# Real statistical division codes of 泉港区, named from the one division table.
PLACES = {code: full_name(code) for code in NAMES}

# username, role, regions, display name
STAFF = [
    ("admin", "admin", [], "平台管理员"),
    ("mod.chen", "moderator", [], "陈审核（慈善总会）"),
    ("mod.lin", "moderator", [], "林审核（慈善总会）"),
    ("cw.shanyao", "caseworker", ["350505001"], "山腰街道社工"),
    ("cw.nanpu", "caseworker", ["350505100"], "南埔镇协理员"),
    ("cw.jieshan", "caseworker", ["350505101"], "界山镇协理员"),
    ("cw.coast", "caseworker", ["350505102", "350505103"], "后龙峰尾片区社工"),
    ("cw.qianhuang", "caseworker", ["350505104"], "前黄镇协理员"),
    ("cw.tuling", "caseworker", ["350505106"], "涂岭镇协理员"),
    ("cw.xitou", "caseworker", ["350505106203"], "溪头村协理员"),
]

# key: (caseworker, region, alias, real name, birth date or years-old, sex serial, categories,
#       level, consents) -- "guardian" marks a child whose every consent a guardian gives.
BENEFICIARIES = {
    "chen": ("cw.shanyao", "350505001", "陈阿伯", "陈金水", "19430815", "131",
             ["elderly", "illness"], "red", "self"),
    "liu": ("cw.nanpu", "350505100", "刘大姐", "刘秀琴", "19750302", "242",
            ["disability", "livelihood"], "orange", "self"),
    "lin": ("cw.jieshan", "350505101", "林阿婆", "林玉兰", "19480611", "026",
            ["elderly"], "yellow", "self"),
    "zhang": ("cw.jieshan", "350505101", "张阿姨", "张美华", "19661120", "048",
              ["illness", "accident"], "orange", "no-publication"),
    "guo": ("cw.coast", "350505102", "郭师傅", "郭建国", "19690917", "313",
            ["accident", "livelihood"], "red", "self"),
    "huang": ("cw.coast", "350505103", "黄奶奶", "黄淑贞", "19400128", "064",
              ["housing", "elderly"], "orange", "self"),
    "zhuang": ("cw.qianhuang", "350505104", "小杰同学", "庄志杰", "20090905", "155",
               ["education"], "blue", "self"),
    "wang": ("cw.xitou", "350505106203", "小雨", "王思雨", 9, "082",
             ["child", "education"], "red", "guardian"),
    "chenmh": ("cw.tuling", "350505106211", "陈叔", "陈明辉", "19620404", "171",
               ["disability", "housing"], "yellow", "self"),
    "wu": ("cw.tuling", "350505106", "吴大哥", "吴志强", "19800716", "197",
           ["illness"], "blue", "self"),
}

# beneficiary, title, kind, item, value in fen, final state, story
WISHES = [
    ("chen", "一台制氧机", "goods", "家用医用制氧机（5升）", 260000, "open",
     "阿伯患慢阻肺多年，冬天夜里常常喘不上气，医生建议在家吸氧。老伴去世后独自生活，希望有一台制氧机。"),
    ("guo", "康复期的生活费援助", "service", "三个月康复期的基本生活保障", 450000, "open",
     "郭师傅在码头务工时从高处摔下，腿骨骨折正在康复，暂时无法工作。家里两个孩子还在上学。"),
    ("wang", "一套新课本和文具", "education", "三年级课本、书包和文具", 30000, "open",
     "小雨父母在外地务工，平时跟奶奶一起生活。书包已经破了，希望新学期能有一个新书包和一套文具。"),
    ("huang", "修补漏雨的屋顶", "service", "老屋屋顶翻修（人工与瓦片）", 380000, "open",
     "黄奶奶住的是几十年的老石厝，台风过后屋顶漏雨，雨天只能用盆接水，希望在雨季前修好屋顶。"),
    ("liu", "一台缝纫机", "goods", "电动缝纫机", 90000, "open",
     "刘大姐下肢残疾，想在家接一些缝补和改衣服的活计，自己挣一份收入。"),
    ("lin", "冬天的棉被和电暖器", "goods", "加厚棉被两床、小电暖器一台", 60000, "open",
     "林阿婆年近八十独居，屋里冬天阴冷潮湿，旧棉被已经结块，希望今年冬天能暖和一些。"),
    ("zhuang", "一台学习用的电脑", "education", "入门笔记本电脑", 320000, "open",
     "小杰正在读高二，成绩很好，网课和查资料一直借用邻居的手机，希望有一台电脑学习。"),
    ("chenmh", "一辆轻便轮椅", "goods", "轻便折叠轮椅", 80000, "pending_review",
     "陈叔因病致残，出门看病要靠邻居背，希望有一辆轻便的轮椅。"),
    ("wu", "定期陪同就医", "service", "每月两次陪同到区医院复诊", 40000, "pending_review",
     "吴大哥需要每月到区医院复诊两次，家人在外地，希望有志愿者陪同。"),
    ("guo", "孩子的助学金", "education", "两个孩子一学期的学杂费", 200000, "draft",
     "郭师傅受伤后收入中断，两个孩子下学期的学杂费还没有着落。"),
    ("zhang", "住院期间的护工", "service", "两周护工服务", 360000, "draft",
     "张阿姨遭遇车祸后住院，家人要上班，希望有护工帮忙照护两周。"),
    ("lin", "一部老人手机", "goods", "大字大音量老人手机", 30000, "rejected",
     "想要一部手机。"),
    ("chen", "换一副老花镜", "goods", "验光配老花镜", 20000, "withdrawn",
     "阿伯的老花镜坏了，看不清药盒上的字。"),
    ("huang", "一台收音机", "goods", "便携收音机", 15000, "claimed",
     "黄奶奶眼睛不好，平时最爱听闽南语广播，旧收音机坏了，希望有一台新的。"),
    ("liu", "一盏护眼台灯", "goods", "LED护眼台灯", 12000, "delivered",
     "刘大姐晚上做缝补活计，屋里灯光昏暗，希望有一盏明亮的台灯。"),
    ("wang", "一双新球鞋", "goods", "儿童运动鞋（33码）", 16000, "fulfilled",
     "小雨喜欢跑步，学校运动会要到了，旧鞋已经开胶。"),
]
# Demo donors who claim the claimed/delivered/fulfilled wishes above.
DONORS = {"claimed": "爱心人士陈先生", "delivered": "爱心企业泉港石化", "fulfilled": "爱心人士林女士"}

REJECT_REASON = "故事太简短：请补充老人的生活情况，以及手机将如何帮助她与家人和社工联系。"
WITHDRAW_REASON = "已由村里的爱心商户帮忙配好眼镜，心愿撤回。"


def seed() -> list[str]:
    """Load the demo data set and return a printable summary. Refuses production and non-empty
    databases."""
    if current_app.config["APP_ENV"] == "production":
        raise Forbidden("forbidden", "生产环境（APP_ENV=production）不能载入演示数据")
    existing = sum(db.session.scalar(select(func.count()).select_from(model))
                   for model in (User, Beneficiary, Wish))
    if existing:
        raise Conflict("conflict",
                       f"数据库不是空的（已有 {existing} 条账号、受助人或心愿记录）："
                       "演示数据只能载入空数据库。请换一个空数据库，或删除 SQLite 文件后重新 "
                       "flask --app wsgi db upgrade。")

    staff = {username: create_staff(username, role, DEMO_PASSWORD, regions, display)
             for username, role, regions, display in STAFF}
    people = {key: _beneficiary(staff, *row) for key, row in BENEFICIARIES.items()}
    moderators = [staff["mod.chen"], staff["mod.lin"]]
    states: Counter[str] = Counter()
    for i, (who, title, kind, item, value, state, story) in enumerate(WISHES):
        ben, author = people[who]
        wish = wishes.create_wish(author, {
            "beneficiary_id": ben.id, "title": title, "story": story, "kind": kind,
            "item": item, "estimated_value_fen": value})
        moderator = moderators[i % 2]
        if state != "draft":
            wishes.submit_wish(author, wish.id)
        if state in ("open", "withdrawn", "claimed", "delivered", "fulfilled"):
            wishes.approve_wish(moderator, wish.id)
        if state in DONORS:
            _claim_through(state, wish.id, author)
        if state == "rejected":
            wishes.reject_wish(moderator, wish.id, REJECT_REASON)
        if state == "withdrawn":
            wishes.withdraw_wish(author, wish.id, WITHDRAW_REASON)
        states[db.session.get(Wish, wish.id).status] += 1
    wish_ids = {title: wid for title, wid in db.session.execute(select(Wish.title, Wish.id))}
    fund = _fund(moderators, wish_ids)
    from app.cases.demo import seed_cases

    cases = seed_cases(staff, _demo_donor)
    return _summary(staff, people, states) + fund + cases


# The 505 fund: who gives, and what is paid out for which wish.
FUND_DONOR = ("郑晓华", 50000)
FUND_DISBURSEMENT = ("一台制氧机", 26000, "购置家用制氧机（基金补足部分）", "泉港区康复器材店")


def _demo_donor(name: str, key: str) -> User:
    from app.auth.service import login_wechat

    if current_app.config["DEV_LOGIN_ENABLED"]:
        return db.session.get(User, login_wechat(f"dev:{name}")["user"].id)
    # a real WeChat app is configured: make the account the way first login would
    donor = User(role="donor", wechat_openid=f"demo-{key}", display_name=name, active=True,
                 token_version=1)
    with unit_of_work():
        db.session.add(donor)
    return donor


def _fund(moderators: list[User], wish_ids: dict[str, str]) -> list[str]:
    """A donation paid into the fund and a disbursement out of it, through the fund's services;
    the payment is settled by the function a WeChat Pay notification goes through."""
    from app.fund import books, disbursements, donations, payments

    name, amount = FUND_DONOR
    donation = donations.open_donation(_demo_donor(name, "fund"), {
        "amount_fen": amount, "anonymous": False, "receipt_requested": True})
    payments.settle({
        "out_trade_no": donation.out_trade_no, "transaction_id": f"DEMO{donation.id[4:24]}",
        "trade_state": "SUCCESS", "amount": {"total": amount, "currency": "CNY"},
        "mchid": current_app.config.get("WECHATPAY_MCH_ID"),
        "appid": current_app.config.get("WECHATPAY_APP_ID"),
        "success_time": utcnow().isoformat()}, via="demo")
    title, value, purpose, payee = FUND_DISBURSEMENT
    item = disbursements.request_disbursement(moderators[0], {
        "amount_fen": value, "purpose": purpose, "wish_id": wish_ids[title], "payee": payee})
    disbursements.approve_disbursement(moderators[1], item.id)
    balance = books.balance()
    return ["", f"505 fund: 1 paid donation ({amount / 100:.2f} yuan, shown as {name[0]}*), "
                f"1 approved disbursement ({value / 100:.2f} yuan); "
                f"balance {balance / 100:.2f} yuan"]


def _claim_through(state: str, wish_id: str, caseworker: User) -> None:
    """A demo donor claims the wish; for delivered/fulfilled, proves it with a generated photo
    (processed at once, as the media worker would) and, for fulfilled, the caseworker confirms."""
    from app.claims import proofs
    from app.claims.service import claim_wish, confirm_claim

    donor = _demo_donor(DONORS[state], state)
    claim = claim_wish(donor, wish_id)
    if state == "claimed":
        return
    proof = proofs.submit_proof(donor, claim.id, _demo_photo(), "已送到受助人家中")
    proofs.process_proof(proof.id)
    if state == "fulfilled":
        confirm_claim(caseworker, claim.id)


def _demo_photo() -> bytes:
    from io import BytesIO

    from PIL import Image, ImageDraw

    image = Image.new("RGB", (800, 600), (235, 228, 215))
    ImageDraw.Draw(image).rectangle((200, 150, 600, 450), fill=(180, 60, 50))
    out = BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


def _beneficiary(staff, caseworker, region, alias, name, born, serial, categories, level,
                 consent):
    author = staff[caseworker]
    if isinstance(born, int):  # a child: born `born` years ago, so always under 14
        born = f"{utcnow().year - born}0610"
    if consent == "guardian":
        consents = [{"kind": kind, "given_by": "guardian", "relation": "祖母",
                     "notice_version": NOTICE}
                    for kind in ("guardian", "sensitive_data", "publication")]
    else:
        kinds = ["sensitive_data"] + ([] if consent == "no-publication" else ["publication"])
        consents = [{"kind": kind, "given_by": "self", "notice_version": NOTICE} for kind in kinds]
    ben = create_beneficiary(author, {
        "real_name": name, "id_number": _id_number(born, serial),
        "phone": f"139{region[-4:]}{serial}{len(name)}",
        "address": f"福建省泉州市泉港区{PLACES[region]}{int(serial) % 90 + 3}号",
        "birth_year": int(born[:4]), "region_code": region, "alias": alias,
        "assessment": {"categories": categories, "level": level}, "consents": consents,
    })
    return ben, author


def _id_number(born: str, serial: str) -> str:
    """A resident ID number of 泉港区 with a valid GB 11643 check character."""
    body = "350505" + born + serial
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return body + "10X98765432"[sum(int(d) * w for d, w in zip(body, weights, strict=True)) % 11]


def _summary(staff, people, states: Counter) -> list[str]:
    lines = ["Demo data for 泉港区 (350505) loaded. Development only.",
             f"Password of every account below: {DEMO_PASSWORD}", "", "Staff accounts:"]
    for username, role, regions, _ in STAFF:
        where = ", ".join(f"{code} {PLACES[code]}" for code in regions) or "all regions"
        lines.append(f"  {username:<14} {role:<10} {where}")
    levels = Counter(ben.level for ben, _ in people.values())
    categories = sorted({c for ben, _ in people.values() for c in ben.categories})
    lines += ["",
              f"Beneficiaries: {len(people)} (" + ", ".join(
                  f"{level} {levels[level]}" for level in ("red", "orange", "yellow", "blue"))
              + f"); categories: {', '.join(categories)}",
              "Wishes by state: " + ", ".join(
                  f"{state} {states[state]}" for state in STATUSES if states[state]),
              "",
              "Donors log in without WeChat in development: "
              'POST /api/v1/auth/wechat {"code": "dev:alice"}']
    return lines
