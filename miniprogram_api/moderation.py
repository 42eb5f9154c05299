"""The review queue (慈善总会)."""
from miniprogram_api.blueprint import Blueprint

from miniprogram_api.policy import allow
from app.wishes import service
from miniprogram_api.schemas import PageArgs, StaffWishRecord, page_schema

blp = Blueprint("moderation", __name__, description="心愿审核（慈善总会）")
blp.url_prefix_rel = "/moderation"

ReviewPage = page_schema(StaffWishRecord, "ReviewPage")


@blp.route("/wishes", methods=["GET"])
@blp.arguments(PageArgs, location="query")
@blp.response(200, ReviewPage)
@allow("moderator")
def review_queue(args):
    """待审核的心愿，最早提交的在前"""
    page = service.review_queue(limit=args["limit"], cursor=args["cursor"])
    return page
