"""Staff account administration (admin only). Accounts are created on the command line."""
from miniprogram_api.blueprint import Blueprint
from werkzeug.routing import BaseConverter

from app.auth import service
from app.auth.policy import allow
from miniprogram_api.schemas import StaffOut, StaffUpdateIn

blp = Blueprint("staff", __name__, description="工作人员账号管理（管理员）")
blp.url_prefix_rel = ""


class UserIdConverter(BaseConverter):
    """A user id as app.types.new_id makes them. `/staff/<user_id>` must not also match other
    `/staff/...` paths: with a plain string, `/staff/wishes` (a caseworker's list) matched it too,
    and answered OPTIONS with `Allow: GET, PATCH` and PATCH with a 404."""

    regex = USER_ID_PATTERN = r"usr_[a-z2-7]{26}"


def user_id_schema(converter: UserIdConverter) -> dict:
    return {"type": "string", "pattern": f"^{UserIdConverter.USER_ID_PATTERN}$"}


# Registered before the routes below are added (deferred functions run in order).
blp.record_once(lambda state: state.app.url_map.converters.setdefault("user_id",
                                                                       UserIdConverter))


@blp.route("/staff", methods=["GET"])
@blp.response(200, StaffOut(many=True))
@allow("admin")
def list_staff():
    """全部工作人员账号"""
    return service.list_staff()


@blp.route("/staff/<user_id:user_id>", methods=["PATCH"])
@blp.arguments(StaffUpdateIn)
@blp.response(200, StaffOut)
@blp.alt_response(409, description="last_admin：不能停用或降级最后一位启用中的管理员")
@allow("admin")
def update_staff(body, user_id):
    """停用/启用账号、修改角色或区划；该账号已签发的令牌立即失效"""
    return service.update_staff(user_id, **body)
