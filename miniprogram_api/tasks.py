"""Finding people, for staff: caseworkers' tasks, the alert rules, and the figures."""
from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from app.auth.scope import scope_prefixes
from app.cases import rules, stats, tasks
from app.cases.models import ASSISTANCE_TYPES
from miniprogram_api.blueprint import Blueprint, refuses_valid_input
from miniprogram_api.policy import allow, require_user
from miniprogram_api.schemas import (
    AssessmentIn, BirthYear, BoundedList, ConsentIn, PageArgs, RegionCode, UTCDateTime,
    page_schema,
)

class StrictBoolean(fields.Boolean):
    """true or false only: marshmallow's Boolean also takes 1, "yes", "on", ..., which the
    document (type: boolean) calls invalid."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


blp = Blueprint("cases", __name__, description="政策找人：走访任务、预警规则、统计（工作人员）")
blp.url_prefix_rel = ""


class TaskArgs(PageArgs):
    status = fields.String(load_default="open", validate=validate.OneOf(["open", "done"]))
    kind = fields.String(load_default=None, validate=validate.OneOf(tasks.TASK_KINDS))
    region = RegionCode(load_default=None)


class SubjectOut(ma.Schema):
    name = fields.String(allow_none=True, metadata={"description": "姓名（打码）"})
    region_code = fields.String()


class TaskSignalOut(ma.Schema):
    kind = fields.String()
    department = fields.String()
    observed_at = UTCDateTime()
    data = fields.Dict()


class TaskOut(ma.Schema):
    id = fields.String()
    kind = fields.String()
    status = fields.String()
    region_code = fields.String()
    subject = fields.Nested(SubjectOut)
    due_at = UTCDateTime()
    overdue = fields.Boolean()
    signals = fields.List(fields.Nested(TaskSignalOut))
    outcome = fields.String(allow_none=True)
    started_at = UTCDateTime(allow_none=True, metadata={
        "description": "协理员开始处理（POST /tasks/{id}/start）的时间；未开始为 null"})
    completed_at = UTCDateTime(allow_none=True)
    beneficiary_id = fields.String(allow_none=True, metadata={
        "description": "该人员的受助人档案（纳入救助时新登记或已有的）"})


TaskPage = page_schema(TaskOut, "TaskPage")


class EnrolBeneficiaryIn(ma.Schema):
    """The beneficiary an `enrolled` outcome records for a person who is not one yet; the
    identity (name, ID number, region; an applicant's phone) comes from the task."""

    alias = fields.String(required=True, validate=validate.Length(min=1, max=32), metadata={
        "description": "公开显示的化名：不得含真实姓名（单独的姓氏除外）、身份证号、电话等"})
    birth_year = fields.Integer(load_default=None, validate=BirthYear(), metadata={
        "description": "缺省时取自身份证号"})
    assessment = fields.Nested(AssessmentIn, required=True)
    consents = BoundedList(fields.Nested(ConsentIn), required=True,
                           validate=validate.Length(min=1, max=10), metadata={
                               "description": "须含 sensitive_data；未满14周岁须有监护人的 guardian 同意"})


class CompleteIn(ma.Schema):
    outcome = fields.String(required=True, validate=validate.OneOf(tasks.OUTCOMES))
    assistance_type = fields.String(load_default=None,
                                    validate=validate.OneOf(list(ASSISTANCE_TYPES)))
    note = fields.String(required=True, validate=validate.Length(max=1000))
    wish_id = fields.String(load_default=None, validate=validate.Length(min=1, max=40))
    beneficiary = fields.Nested(EnrolBeneficiaryIn, load_default=None, metadata={
        "description": "enrolled 且该人员尚未登记为受助人时必填（同时登记受助人及其同意）；"
                       "已是受助人时不得填写"})


@blp.route("/tasks", methods=["GET"])
@blp.arguments(TaskArgs, location="query")
@blp.response(200, TaskPage)
@allow("caseworker", "moderator", "admin")
def list_tasks(args):
    """走访与核实任务：协理员看负责区划内的，审核员与管理员看全部；最早到期的在前"""
    page = tasks.list_tasks(require_user(), status=args["status"], kind=args["kind"],
                            region=args["region"], limit=args["limit"], cursor=args["cursor"])
    return {"items": tasks.views(page.items), "next_cursor": page.next_cursor}


@blp.route("/tasks/<task_id>/start", methods=["POST"])
@blp.response(200, TaskOut)
@allow("caseworker", "moderator", "admin")
def start(task_id):
    """开始处理任务（协理员已接手、将上门走访）：记录开始时间与人员；已开始的再次提交原样返回，
    已完成的 409 task_closed。申请核实任务的申请由 received 变为 visiting（核实中），并通知申请人"""
    task = tasks.start_task(require_user(), task_id)
    return tasks.views([task])[0]


@blp.route("/tasks/<task_id>/complete", methods=["POST"])
@blp.arguments(CompleteIn)
@blp.response(200, TaskOut)
@blp.doc(responses=refuses_valid_input(
    "enrolled 未注明救助类型、其他结果填了救助类型，wish_id 不是 wish_opened 的已有心愿；"
    "enrolled 时该人员尚未登记为受助人却未提交 beneficiary，或已是受助人却提交了 beneficiary"
    "（validation_error）；受助人化名含个人信息（pii_in_text）；缺少同意（consent_missing、"
    "guardian_consent_required）"))
@allow("caseworker", "moderator")
def complete(body, task_id):
    """记录走访结果（每个任务只能完成一次，之后 409 task_closed）；enrolled 须注明救助类型，
    该人员尚未登记为受助人时须同时提交 beneficiary（化名、评估、同意），在同一事务中登记；
    joint_case 仅记录结果，关联联合救助个案待该功能上线"""
    task = tasks.complete_task(require_user(), task_id, body["outcome"], body["note"],
                               assistance_type=body["assistance_type"], wish_id=body["wish_id"],
                               beneficiary=body["beneficiary"])
    return tasks.views([task])[0]


def _rule_fields(kind: str) -> type[ma.Schema]:
    extra = {name: fields.Integer(required=True, validate=validate.Range(low, high))
             for name, (low, high) in rules._NUMBERS.get(kind, {}).items()}
    return ma.Schema.from_dict({
        "alerts": StrictBoolean(required=True), "level": fields.String(
            required=True, validate=validate.OneOf(["red", "orange", "yellow", "blue"])),
        **extra}, name=f"AlertRule_{kind}")


AlertRulesDoc = ma.Schema.from_dict(
    {kind: fields.Nested(_rule_fields(kind), required=True) for kind in rules.KINDS},
    name="AlertRulesDoc")


class AlertRulesIn(ma.Schema):
    rules = fields.Nested(AlertRulesDoc, required=True)


class AlertRulesOut(ma.Schema):
    version = fields.Integer(metadata={"description": "0 = 默认规则"})
    rules = fields.Nested(AlertRulesDoc)
    changed_by = fields.String(allow_none=True)
    changed_at = UTCDateTime(allow_none=True)


def _rules_out():
    row = rules.current_version()
    version, current = rules.current_rules()
    return {"version": version, "rules": current,
            "changed_by": row.changed_by if row else None,
            "changed_at": row.changed_at if row else None}


@blp.route("/alert-rules", methods=["GET"])
@blp.response(200, AlertRulesOut)
@allow("caseworker", "moderator", "admin")
def get_rules():
    """现行预警规则（哪些信号、何种阈值触发预警，预警级别）"""
    return _rules_out()


@blp.route("/alert-rules", methods=["PUT"])
@blp.arguments(AlertRulesIn)
@blp.response(200, AlertRulesOut)
@allow("admin")
def put_rules(body):
    """修改预警规则（仅管理员）：每次修改生成新版本，记录修改人、时间及修改前后内容"""
    rules.replace_rules(require_user(), body["rules"])
    return _rules_out()


class CaseStatsArgs(ma.Schema):
    region = RegionCode(load_default=None)


class ApplicationCounts(ma.Schema):
    received = fields.Integer(metadata={"description": "收到的申请总数"})
    visiting = fields.Integer(metadata={"description": "正在入户核实的"})
    approved = fields.Integer()
    refused = fields.Integer()


class CaseStatsOut(ma.Schema):
    signals = fields.Integer()
    alerts = fields.Integer()
    tasks_open = fields.Integer()
    tasks_started = fields.Integer(metadata={"description": "未完成任务中已有协理员接手的"})
    tasks_done = fields.Integer()
    done_on_time_ratio = fields.Float(allow_none=True)
    outcomes = fields.Dict(keys=fields.String(), values=fields.Integer())
    applications = fields.Nested(ApplicationCounts)


@blp.route("/cases/stats", methods=["GET"])
@blp.arguments(CaseStatsArgs, location="query")
@blp.response(200, CaseStatsOut)
@allow("caseworker", "moderator", "admin")
def case_stats(args):
    """政策找人统计（按区划前缀）：信号、预警、任务、按期完成率、走访结果、申请"""
    return stats.case_stats(args["region"], scope_prefixes(require_user()))
