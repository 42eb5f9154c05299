"""Staff account administration (admin only). Accounts are created on the command line."""
from flask_smorest import Blueprint

from app.auth import service
from app.auth.policy import allow
from miniprogram_api.schemas import StaffOut, StaffUpdateIn

blp = Blueprint("staff", __name__, description="工作人员账号管理（管理员）")
blp.url_prefix_rel = ""


@blp.route("/staff", methods=["GET"])
@blp.response(200, StaffOut(many=True))
@allow("admin")
def list_staff():
    """全部工作人员账号"""
    return service.list_staff()


@blp.route("/staff/<user_id>", methods=["PATCH"])
@blp.arguments(StaffUpdateIn)
@blp.response(200, StaffOut)
@allow("admin")
def update_staff(body, user_id):
    """停用/启用账号、修改角色或区划；该账号已签发的令牌立即失效"""
    return service.update_staff(user_id, **body)
