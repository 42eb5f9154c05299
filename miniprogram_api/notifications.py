"""Notifications: the staff inbox, and the donor's subscribe-message consents."""
from __future__ import annotations

import marshmallow as ma
from miniprogram_api.blueprint import Blueprint
from marshmallow import fields, validate

from miniprogram_api.policy import allow, require_user
from app.notifications import credits, inbox
from miniprogram_api.schemas import BoundedList, PageArgs, UTCDateTime, page_schema

blp = Blueprint("notifications", __name__, description="通知：工作人员站内信与订阅消息授权")
blp.url_prefix_rel = ""

_TEMPLATE_ID = fields.String(validate=validate.Length(min=1, max=128))


class InboxArgs(PageArgs):
    unread = fields.Boolean(load_default=False, metadata={"description": "只看未读"})


class NotificationOut(ma.Schema):
    id = fields.String()
    topic = fields.String()
    title = fields.String()
    body = fields.String()
    data = fields.Dict(keys=fields.String())
    created_at = UTCDateTime()
    read_at = UTCDateTime(allow_none=True)


NotificationPage = page_schema(NotificationOut, "NotificationPage")


class SubscriptionsIn(ma.Schema):
    # wx.requestSubscribeMessage takes at most 3 one-time templates per call.
    template_ids = BoundedList(_TEMPLATE_ID, required=True,
                               validate=validate.Length(min=1, max=3),
                               metadata={"description": "本次 wx.requestSubscribeMessage 请求的模板"})
    accepted = BoundedList(_TEMPLATE_ID, required=True, validate=validate.Length(max=3),
                           metadata={"description": "用户选择“允许”（accept）的模板"})


class SubscriptionOut(ma.Schema):
    topic = fields.String()
    template_id = fields.String()
    credits = fields.Integer(metadata={"description": "还可以给该用户发送的消息条数"})


class SubscriptionsOut(ma.Schema):
    items = fields.List(fields.Nested(SubscriptionOut))


@blp.route("/me/notifications", methods=["GET"])
@blp.arguments(InboxArgs, location="query")
@blp.response(200, NotificationPage)
@allow("caseworker", "moderator", "admin")
def my_notifications(args):
    """我的站内通知，最新的在前；?unread=true 只看未读"""
    page = inbox.list_inbox(require_user(), unread_only=args["unread"], limit=args["limit"],
                            cursor=args["cursor"])
    return page


@blp.route("/me/notifications/<notification_id>/read", methods=["POST"])
@blp.response(200, NotificationOut)
@allow("caseworker", "moderator", "admin")
def read(notification_id):
    """标记一条自己的通知为已读（重复标记不改变首次阅读时间）"""
    return inbox.mark_read(require_user(), notification_id)


@blp.route("/me/subscriptions", methods=["GET"])
@blp.response(200, SubscriptionsOut)
@allow("donor")
def my_subscriptions():
    """可订阅的消息模板（供 wx.requestSubscribeMessage 使用）及剩余可接收条数"""
    return credits.balances(require_user())


@blp.route("/me/subscriptions", methods=["POST"])
@blp.arguments(SubscriptionsIn)
@blp.response(200, SubscriptionsOut)
@allow("donor")
def record_subscriptions(body):
    """上报 wx.requestSubscribeMessage 的结果：每个“允许”的模板可接收一条消息"""
    return credits.record_consent(require_user(), body["template_ids"], body["accepted"])
