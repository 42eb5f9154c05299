"""Wishes: caseworkers write and submit them, moderators decide, the public reads the feed."""
from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from functools import wraps

from flask import current_app, g, json, jsonify, request
from miniprogram_api.blueprint import Blueprint, refuses_valid_input

from miniprogram_api.policy import PUBLIC, allow, current_user, require_user
from miniprogram_api.problems import request_id_of
from app import serving
from app.wishes import feed_cache, service
from miniprogram_api.schemas import (
    FeedArgs, PublicWishCard, RejectIn, StaffWishArgs, StaffWishRecord, WishCreateIn,
    WishTransitionOut, WishUpdateIn, WithdrawIn, page_schema,
)

blp = Blueprint("wishes", __name__, description="微心愿")
blp.url_prefix_rel = ""

FeedPage = page_schema(PublicWishCard, "FeedPage")
StaffWishPage = page_schema(StaffWishRecord, "StaffWishPage")
_feed_schema = FeedPage()
_card_schema = PublicWishCard()


def _served_from_cache(view):
    """Answer from the page cache before the query string is even parsed.

    A page is stored only after its exact query string was validated and rendered, so a hit needs
    no second validation. The generation is read before the database is (see feed_cache).
    """
    @wraps(view)
    def wrapper(*args, **kwargs):
        generation = g.feed_generation = feed_cache.generation()
        cached = (feed_cache.get(generation, request.query_string)
                  if generation is not None else None)
        if cached is not None:
            return _feed_response(*cached)
        return view(*args, **kwargs)
    return wrapper


@blp.route("/wishes", methods=["GET"])
@_served_from_cache
@blp.arguments(FeedArgs(), location="query")  # an instance: not rebuilt per request
@blp.response(200, FeedPage)
@allow(PUBLIC)
def feed(args):
    """公开的心愿列表：仅展示待认领（open）的心愿；默认红色等级优先、再按发布时间先后"""
    page = service.public_feed(**args)
    body = _feed_body(page)
    etag = hashlib.sha256(body).hexdigest()[:32]
    if g.feed_generation is not None:
        feed_cache.put(g.feed_generation, request.query_string, body, etag,
                       current_app.config["FEED_CACHE_SECONDS"])
    return _feed_response(body, etag)


def _feed_body(page) -> bytes:
    """The page as `json.dumps(_feed_schema.dump(page), ensure_ascii=False)` gives it, from each
    card's JSON as this process last rendered it (`_item_json`)."""
    year = datetime.now(timezone.utc).year
    items = ", ".join([_item_json(card, year) for card in page.items])
    return (f'{{"items": [{items}], "next_cursor": '
            f'{json.dumps(page.next_cursor, ensure_ascii=False)}}}').encode()


# A card's JSON in the feed, by the card itself: a PublicCard holds every value its JSON shows
# (the age band also depends on the year), so an equal card renders to equal bytes and no
# version number is needed; a changed wish is a different card. Cleared when full.
_ITEMS_MAX = 8192
_items: dict[tuple, str] = {}


def _item_json(card, year: int) -> str:
    key = (card, year)
    text = _items.get(key)
    if text is None:
        text = json.dumps(_card_schema.dump(card), ensure_ascii=False)
        if datetime.now(timezone.utc).year == year:  # not across a new year (the age band)
            if len(_items) >= _ITEMS_MAX:
                _items.clear()
            _items[key] = text
    return text


_FEED_CACHE_CONTROL = "public, max-age=0, must-revalidate"
_CONDITIONAL = ("HTTP_IF_NONE_MATCH", "HTTP_IF_MATCH", "HTTP_IF_MODIFIED_SINCE",
                "HTTP_IF_UNMODIFIED_SINCE", "HTTP_RANGE")


def _feed_response(body: bytes, etag: str):
    response = current_app.response_class(body, mimetype="application/json")
    response.set_etag(etag)
    response.headers["Cache-Control"] = _FEED_CACHE_CONTROL
    if any(name in request.environ for name in _CONDITIONAL):  # most requests have none
        response.make_conditional(request)
    return response


class CachedReads:
    """WSGI middleware in front of the Flask app: a public feed page or wish card already cached
    by this process, under a version number the version watch vouches for, is answered here,
    with the very bytes and headers the views above and the app's after_request hook give it
    (tests/api/test_card_cache.py compares them). Anything else goes to Flask: a request with a
    token (staff get the full record; a bad token is a 401), a conditional one (a 304), one with
    a body, a query string on a card, a miss, or a process whose watch is not up.

    A hit through Flask cost ~105 µs of CPU in process, most of it Flask's request context,
    routing and hooks around a dictionary lookup; here it costs ~15 µs (bench/README.md).
    """

    _PASS = ("HTTP_AUTHORIZATION", *_CONDITIONAL, "HTTP_TRANSFER_ENCODING")

    def __init__(self, app, wsgi_app, prefix: str) -> None:
        self.app = app
        self.wsgi_app = wsgi_app
        self.PREFIX = prefix + "/wishes"
        self.hits = 0  # answered here (the tests look)

    def __call__(self, environ, start_response):
        hit = self._cached(environ)
        if hit is None:
            return self.wsgi_app(environ, start_response)
        self.hits += 1
        start_response("200 OK", hit[1])
        return [hit[0]]

    def _cached(self, environ) -> tuple[bytes, list] | None:
        path = environ.get("PATH_INFO", "")
        if (environ.get("REQUEST_METHOD") != "GET" or not path.startswith(self.PREFIX)
                or environ.get("CONTENT_LENGTH", "0") not in ("", "0")
                or any(name in environ for name in self._PASS)):
            return None
        client = self.app.extensions.get("redis")
        if client is None:
            return None
        if path == self.PREFIX:  # the feed, under its raw query string (see _served_from_cache)
            page = feed_cache.remembered_page(
                client, environ.get("QUERY_STRING", "").encode("latin-1"))
            if page is None:
                return None
            body, etag = page
            return body, [("Content-Type", "application/json"),
                          ("Content-Length", str(len(body))),
                          ("ETag", f'"{etag}"'),
                          ("Cache-Control", _FEED_CACHE_CONTROL),
                          *_common_headers(environ)]
        wish_id = path[len(self.PREFIX) + 1:]
        if (path[len(self.PREFIX)] != "/" or not wish_id or "/" in wish_id
                or environ.get("QUERY_STRING")):
            return None
        body = feed_cache.remembered_card(client, wish_id)
        if body is None:
            return None
        return body, [("Content-Type", "application/json"),
                      ("Content-Length", str(len(body))),
                      *_common_headers(environ),
                      ("Cache-Control", "no-store")]


def _common_headers(environ) -> tuple:
    return serving.answer_headers(request_id_of(environ))


@blp.route("/wishes", methods=["POST"])
@blp.arguments(WishCreateIn)
@blp.response(201, StaffWishRecord)
@blp.doc(responses=refuses_valid_input(
    "受助人不存在或不在负责区划内、已撤回同意（consent_missing），或内容含个人敏感信息"
    "（pii_in_text），或请求体不合要求（validation_error）"))
@allow("caseworker")
def create(body):
    """协理员为负责区划内的受助人起草心愿（draft）"""
    return service.create_wish(require_user(), body)


@blp.route("/wishes/<wish_id>", methods=["GET"])
@blp.response(200, PublicWishCard)
@blp.alt_response(200, schema=StaffWishRecord, description="负责该区划的工作人员看到完整记录",
                  success=True)
@allow(PUBLIC)
def get(wish_id):
    """已发布心愿的公开卡片；负责该区划的工作人员看到完整记录"""
    user = current_user()
    if user is None or not user.is_staff:
        return _public_card(wish_id)
    wish, full = service.get_wish_for(user, wish_id)
    if full:  # bypass the public schema: staff in scope see the whole record
        return jsonify(StaffWishRecord().dump(wish))
    return wish


def _public_card(wish_id: str):
    """The card everyone but staff sees, cached per process under the wish's card version."""
    def render() -> bytes:
        card = service.get_public_card(wish_id)
        return current_app.json.response(_card_schema.dump(card)).get_data()

    body = feed_cache.card(wish_id, render, current_app.config["FEED_CACHE_SECONDS"])
    return current_app.response_class(body, mimetype=current_app.json.mimetype)


@blp.route("/wishes/<wish_id>", methods=["PATCH"])
@blp.arguments(WishUpdateIn)
@blp.response(200, StaffWishRecord)
@allow("caseworker")
def update(body, wish_id):
    """修改心愿（仅作者；仅草稿或被驳回状态）"""
    return service.update_wish(require_user(), wish_id, body)


@blp.route("/wishes/<wish_id>/submit", methods=["POST"])
@blp.response(200, StaffWishRecord)
@blp.doc(responses=refuses_valid_input(
    "受助人尚未同意公开发布（consent_missing），或内容含个人敏感信息（pii_in_text）"))
@allow("caseworker")
def submit(wish_id):
    """提交审核；受助人须有 publication 同意，内容不得含个人敏感信息"""
    return service.submit_wish(require_user(), wish_id)


@blp.route("/wishes/<wish_id>/approve", methods=["POST"])
@blp.response(200, StaffWishRecord)
@allow("moderator")
def approve(wish_id):
    """审核通过并公开（不能审核自己写的心愿）"""
    return service.approve_wish(require_user(), wish_id)


@blp.route("/wishes/<wish_id>/reject", methods=["POST"])
@blp.arguments(RejectIn)
@blp.response(200, StaffWishRecord)
@allow("moderator")
def reject(body, wish_id):
    """驳回并说明理由"""
    return service.reject_wish(require_user(), wish_id, body["reason"])


@blp.route("/wishes/<wish_id>/withdraw", methods=["POST"])
@blp.arguments(WithdrawIn(), required=False)
@blp.response(200, StaffWishRecord)
@allow("moderator", "caseworker")
def withdraw(body, wish_id):
    """撤回一个待认领的心愿（审核员，或发布它的协理员）"""
    return service.withdraw_wish(require_user(), wish_id, (body or {}).get("reason"))


@blp.route("/wishes/<wish_id>/transitions", methods=["GET"])
@blp.response(200, WishTransitionOut(many=True))
@allow("caseworker", "moderator")
def transitions(wish_id):
    """心愿状态变更的审计记录（谁、何时、从何到何、理由）"""
    return service.transitions_of(require_user(), wish_id)


@blp.route("/staff/wishes", methods=["GET"])
@blp.arguments(StaffWishArgs, location="query")
@blp.response(200, StaffWishPage)
@allow("caseworker", "moderator")
def staff_wishes(args):
    """负责区划内的全部心愿（含草稿），最新的在前"""
    page = service.staff_wishes(require_user(), status=args.get("status"), limit=args["limit"],
                                cursor=args["cursor"])
    return page
