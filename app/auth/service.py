"""Login and account use cases, each one unit of work."""
from __future__ import annotations

import hashlib
import logging
import re
from typing import Iterable

from sqlalchemy import select

from app import wechat
from app.auth import throttle
from app.auth.models import ADMIN, DONOR, STAFF_ROLES, StaffRegion, User
from app.auth.passwords import MIN_PASSWORD_LENGTH, hash_password, needs_rehash, verify_password
from app.auth.tokens import issue_access_token
from app.errors import Conflict, Forbidden, Invalid, NotFound, Unauthenticated, ValidationFailed
from app.extensions import db
from app.pii_scan import find_pii
from app.regions import validate_region_code
from app.settings import settings
from app.types import utcnow
from app.uow import lock, unit_of_work, use_case

log = logging.getLogger(__name__)

USERNAME_RE = re.compile(r"^[A-Za-z0-9_.-]{3,64}$")
DEV_PREFIX = "dev:"


def token_response(user: User) -> dict:
    token, ttl = issue_access_token(user)
    return {"access_token": token, "token_type": "Bearer", "expires_in": ttl, "user": user}


def login_wechat(code: str) -> dict:
    """A donor logs in with a wx.login code; the account is made on first login."""
    if code.startswith(DEV_PREFIX):
        if not settings()["DEV_LOGIN_ENABLED"]:
            raise Unauthenticated("wechat_code_invalid", "微信登录凭证无效")
        name = code[len(DEV_PREFIX):].strip()
        if not name or len(name) > 32:
            raise ValidationFailed(detail="开发登录需要 1 到 32 个字符的名字",
                                   errors={"code": ["dev: 后须有名字"]})
        openid, unionid, display = f"dev-{name}", None, name
    else:
        session = wechat.code_to_session(code)
        openid, unionid, display = session.openid, session.unionid, None
    with unit_of_work():
        user = db.session.execute(
            select(User).filter_by(wechat_openid=openid)).scalar_one_or_none()
        if user is None:
            digest = hashlib.sha256(openid.encode()).hexdigest()[:6]
            # active/token_version set here: column defaults apply only at flush, after the checks
            user = User(role=DONOR, wechat_openid=openid, wechat_unionid=unionid,
                        display_name=display or f"爱心人士{digest}", active=True, token_version=1)
            db.session.add(user)
            log.info("new donor account created")
        if not user.active:
            raise Forbidden("account_disabled", "该账号已被停用")
        user.last_login_at = utcnow()
    return token_response(user)


def login_staff(username: str, password: str, address: str) -> dict:
    throttle.check_not_locked(username, address)
    with unit_of_work():
        user = db.session.execute(
            select(User).where(User.username == username.strip(), User.role.in_(STAFF_ROLES))
        ).scalar_one_or_none()
        profile = settings()["PASSWORD_HASH_PROFILE"]
        if not verify_password(user.password_hash if user else None, password, profile):
            throttle.record_failure(username, address)
            log.info("staff login failed for a username from %s", address)
            raise Unauthenticated("invalid_credentials", "用户名或密码错误")
        if not user.active:
            raise Forbidden("account_disabled", "该账号已被停用")
        throttle.record_success(username, address)
        if needs_rehash(user.password_hash, profile):
            user.password_hash = hash_password(password, profile)
        user.last_login_at = utcnow()
    return token_response(user)


@use_case
def create_staff(username: str, role: str, password: str, regions: Iterable[str] = (),
                 display_name: str | None = None) -> User:
    if not USERNAME_RE.match(username):
        raise ValidationFailed(detail="用户名只能包含字母、数字和 _.-，长度 3–64",
                               errors={"username": ["格式不正确"]})
    if role not in STAFF_ROLES:
        raise ValidationFailed(detail="角色必须是 caseworker、moderator 或 admin",
                               errors={"role": ["取值无效"]})
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationFailed(detail=f"密码至少 {MIN_PASSWORD_LENGTH} 个字符",
                               errors={"password": ["过短"]})
    regions = sorted({validate_region_code(code) for code in regions})
    if role == "caseworker" and not regions:
        raise ValidationFailed(detail="协理员必须绑定至少一个区划代码",
                               errors={"region": ["必填"]})
    if db.session.execute(select(User.id).filter_by(username=username)).first():
        raise Conflict("conflict", f"用户名 {username} 已存在")
    password_hash = hash_password(password, settings()["PASSWORD_HASH_PROFILE"])
    user = User(role=role, username=username, password_hash=password_hash,
                display_name=display_name or username,
                regions=[StaffRegion(region_code=code) for code in regions])
    db.session.add(user)
    log.info("staff account %s created with role %s", username, role)
    return user


@use_case
def update_staff(user_id: str, *, active: bool | None = None, role: str | None = None,
                 regions: list[str] | None = None) -> User:
    """Admin changes to a staff account. Any change ends the account's current sessions."""
    user = db.session.get(User, user_id)
    if user is None or user.role not in STAFF_ROLES:
        raise NotFound("未找到该工作人员账号")
    if role is not None and role not in STAFF_ROLES:
        raise ValidationFailed(detail="角色取值无效", errors={"role": ["取值无效"]})
    if active is False or (role is not None and role != ADMIN):
        _keep_an_active_admin(user.id)
    if active is not None:
        user.active = active
    if role is not None:
        user.role = role
    if regions is not None:
        codes = sorted({validate_region_code(code) for code in regions})
        # Keep the rows of codes the account already has: a new row for the same code would be
        # INSERTed before the old one is DELETEd, and break uq(user_id, region_code) (a 500
        # Schemathesis found when a PATCH repeated a current region).
        kept = {row.region_code: row for row in user.regions}
        user.regions = [kept.get(code) or StaffRegion(region_code=code) for code in codes]
    if user.role == "caseworker" and not user.regions:
        raise ValidationFailed(detail="协理员必须绑定至少一个区划代码",
                               errors={"regions": ["必填"]})
    user.token_version += 1
    log.info("staff account %s updated; old tokens revoked", user.username)
    return user


def _keep_an_active_admin(user_id: str) -> None:
    """Refuse (409 `last_admin`) a change that takes the last active admin away: without one,
    nobody could manage staff accounts through the API any more.

    Race-safe: the active admins' rows are locked (in id order, so two changes cannot deadlock)
    until this transaction ends. Two admins disabling each other at once: the second waits for
    the first to commit, and PostgreSQL re-checks its WHERE on the rows it waited for, so it sees
    one active admin left (the one it is changing) and is refused."""
    admins = lock("user", select(User.id).where(User.role == ADMIN, User.active.is_(True))
                  .order_by(User.id).with_for_update()).scalars().all()
    if admins == [user_id]:
        raise Conflict("last_admin", "这是最后一位启用中的管理员，不能停用或降级；"
                                     "请先启用或创建另一位管理员")


def list_staff() -> list[User]:
    return list(db.session.execute(
        select(User).where(User.role.in_(STAFF_ROLES)).order_by(User.username)).scalars())



@use_case
def update_profile(user: User, data: dict) -> User:
    """The caller's own profile. Today: the display name a donor typed in the mini-program's
    nickname field; the open ledger shows only its first character (陈*), and only for claims
    and donations made with `"anonymous": false`."""
    if "display_name" in data:
        name = " ".join(data["display_name"].split())  # no control characters, one space
        if not name:
            raise ValidationFailed(detail="昵称不能为空",
                                   errors={"display_name": ["昵称不能为空"]})
        if find_pii(name):
            raise Invalid("pii_in_text", "昵称中不能包含手机号、身份证号或银行卡号",
                          errors={"display_name": ["包含个人敏感信息"]})
        user.display_name = name
    log.info("profile of %s updated", user.id)
    return user
