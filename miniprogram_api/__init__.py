"""The HTTP edge for the mini-program and the public: thin views over app services."""
from flask_smorest import Api

from miniprogram_api import auth, beneficiaries, moderation, ops, staff, wishes

PREFIX = "/api/v1"


def register(api: Api) -> None:
    for module in (ops, auth, staff, beneficiaries, wishes, moderation):
        api.register_blueprint(module.blp, url_prefix=PREFIX + module.blp.url_prefix_rel)
