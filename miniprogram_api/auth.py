"""Login (donors through WeChat, staff with a password) and the caller's own profile."""
from flask import request
from miniprogram_api.blueprint import Blueprint

from app.auth import service
from app.auth.policy import PUBLIC, allow, require_user
from app.ratelimit import rate_limited
from miniprogram_api.schemas import MeIn, MeOut, StaffLoginIn, TokenOut, WechatLoginIn

blp = Blueprint("auth", __name__, description="登录与个人信息")
blp.url_prefix_rel = ""


@blp.route("/auth/wechat", methods=["POST"])
@rate_limited("login", keys=("address",))
@blp.arguments(WechatLoginIn)
@blp.response(200, TokenOut)
@allow(PUBLIC)
def login_wechat(body):
    """爱心人士用 wx.login 的 code 登录"""
    return service.login_wechat(body["code"])


@blp.route("/auth/staff", methods=["POST"])
@rate_limited("login", keys=("address", "address_username"))
@blp.arguments(StaffLoginIn)
@blp.response(200, TokenOut)
@allow(PUBLIC)
def login_staff(body):
    """工作人员用户名密码登录；连续失败会被限制（429）"""
    return service.login_staff(body["username"], body["password"], request.remote_addr or "-")


@blp.route("/me", methods=["GET"])
@blp.response(200, MeOut)
@allow("donor", "caseworker", "moderator", "admin")
def me():
    """当前用户的资料、角色和负责区划"""
    return require_user()


@blp.route("/me", methods=["PATCH"])
@blp.arguments(MeIn)
@blp.response(200, MeOut)
@allow("donor", "caseworker", "moderator", "admin")
def update_me(body):
    """修改自己的昵称"""
    return service.update_profile(require_user(), body)
