"""Beneficiaries: staff only, never public. Identity is masked unless revealed (and audited)."""
from miniprogram_api.blueprint import Blueprint

from app.auth.policy import allow, require_user
from app.beneficiaries import service
from miniprogram_api.schemas import (
    BeneficiaryIn, BeneficiaryOut, BeneficiaryReadArgs, BeneficiarySummaryOut, PageArgs,
    PiiAccessOut, page_schema,
)

blp = Blueprint("beneficiaries", __name__, description="受助人（仅限工作人员，从不公开）")
blp.url_prefix_rel = "/beneficiaries"

BeneficiaryPage = page_schema(BeneficiarySummaryOut, "BeneficiaryPage")


def _summary(ben):
    return {"id": ben.id, "alias": ben.alias, "region_code": ben.region_code,
            "level": ben.level, "categories": ben.categories, "created_at": ben.created_at,
            "erased": ben.erased}


@blp.route("", methods=["POST"])
@blp.arguments(BeneficiaryIn)
@blp.response(201, BeneficiaryOut)
@allow("caseworker")
def create(body):
    """登记受助人（协理员，限本人负责区划）；未满14周岁须监护人同意

    化名会公开显示：含有真实姓名（单独的姓氏除外）或身份证号、电话、住址的任何部分 → 422 pii_in_text。
    """
    user = require_user()
    ben = service.create_beneficiary(user, body)
    return service.view_beneficiary(user, ben, reveal=False)


@blp.route("", methods=["GET"])
@blp.arguments(PageArgs, location="query")
@blp.response(200, BeneficiaryPage)
@allow("caseworker", "moderator")
def list_(args):
    """负责区划内的受助人（身份信息不在列表中）"""
    page = service.list_beneficiaries_for(require_user(), limit=args["limit"],
                                          cursor=args["cursor"])
    return {"items": [_summary(b) for b in page.items], "next_cursor": page.next_cursor}


@blp.route("/<ben_id>", methods=["GET"])
@blp.arguments(BeneficiaryReadArgs, location="query")
@blp.response(200, BeneficiaryOut)
@allow("caseworker", "moderator")
def get(args, ben_id):
    """受助人详情：身份信息打码；?reveal=true 显示明文并写入访问审计"""
    user = require_user()
    ben = service.get_beneficiary_for(user, ben_id)
    return service.view_beneficiary(user, ben, reveal=args["reveal"], purpose=args["purpose"])


@blp.route("/<ben_id>/access-log", methods=["GET"])
@blp.response(200, PiiAccessOut(many=True))
@allow("caseworker", "moderator")
def access_log(ben_id):
    """谁在何时查看过该受助人的身份明文"""
    ben = service.get_beneficiary_for(require_user(), ben_id)
    return service.list_access_log(ben)


@blp.route("/<ben_id>/withdraw-consent", methods=["POST"])
@blp.response(200, BeneficiaryOut)
@allow("caseworker", "moderator")
def withdraw_consent(ben_id):
    """受助人撤回同意：心愿下架、照片删除、身份信息抹除、化名替换；账本条目保留（不含受助人信息）"""
    user = require_user()
    ben = service.withdraw_consent(user, ben_id)
    return service.view_beneficiary(user, ben, reveal=False)
