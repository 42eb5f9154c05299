"""The pages: each parses its query, makes one read through the domain and renders a template."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, redirect, render_template, request, send_file

from app import stats
from miniprogram_api.policy import PUBLIC, allow
from app.errors import DomainError
from app.fund import books
from app.ledger import log as ledger, lookup
from app.wishes import service as wishes
from app.claims.progress import read_progress
from miniprogram_api.problems import status_of
from public_site import assets, figures, page_cache
from public_site.headers import PAGE_CACHE, PAGE_CSP
from public_site.present import FILTERS, ledger_row

bp = Blueprint("public_site", __name__, template_folder="templates")

WALL_PAGE = 20
LEDGER_PAGE = 20
FUND_RECENT = 10


@bp.after_request
def _headers(response):
    """Before the app's own after_request (which would say no-store when nothing is set)."""
    response.headers["Content-Security-Policy"] = PAGE_CSP
    response.headers["Referrer-Policy"] = "same-origin"
    if response.status_code < 400:
        response.headers.setdefault("Cache-Control", PAGE_CACHE)
    return response


@bp.errorhandler(DomainError)
def _error(error: DomainError):
    status = status_of(error)
    return render_template("site/error.html", error=error, status=status), status


def _html(body: bytes):
    return current_app.response_class(body, mimetype="text/html")


# The wall, a wish's page and the ledger are what a crowd opens: each is served from this
# process's page cache (public_site.page_cache) while the Redis version numbers it was rendered
# under hold, so a hit is no query (and mostly no Redis round trip). Each key holds everything
# the page depends on besides those numbers.

@bp.get("/")
@allow(PUBLIC)
def wall():
    """The wish wall: open wishes, most urgent first, filtered by town, kind, category, level."""
    def render() -> bytes:
        chosen = {name: request.args.get(name) for name in FILTERS
                  if request.args.get(name) in dict(FILTERS[name])}
        page = wishes.public_feed(kind=chosen.get("kind"), level=chosen.get("level"),
                                  category=chosen.get("category"), region=chosen.get("town"),
                                  limit=WALL_PAGE, cursor=request.args.get("cursor") or None)
        return render_template("site/wall.html", page=page, chosen=chosen,
                               filters=FILTERS).encode()

    return _html(page_cache.wall((request.query_string, WALL_PAGE), render))


@bp.get("/w/<wish_id>")
@allow(PUBLIC)
def wish(wish_id: str):
    """One published wish: its card, its progress and, once fulfilled, its ledger entry."""
    def render() -> bytes:
        card = wishes.get_public_card(wish_id)
        progress = read_progress(wish_id)
        entry = before = None
        if card.status == "fulfilled" and progress.ledger_index is not None:
            rows = ledger.entries(progress.ledger_index, 1)
            entry = ledger_row(rows[0].index, rows[0].leaf) if rows else None
            if ledger.size() - progress.ledger_index > LEDGER_PAGE:  # not on the first page
                before = progress.ledger_index + 1
        return render_template("site/wish.html", card=card, progress=progress, entry=entry,
                               before=before).encode()

    return _html(page_cache.wish(wish_id, (wish_id, LEDGER_PAGE), render))


@bp.get("/ledger")
@allow(PUBLIC)
def ledger_page():
    """The open ledger, newest first, a page at a time (`?before=<index>`)."""
    def render() -> bytes:
        size = ledger.size()
        before = request.args.get("before", type=int)
        before = size if before is None or not 0 < before <= size else before
        rows = [ledger_row(r.index, r.leaf) for r in lookup.newest(before, LEDGER_PAGE)]
        older = rows[-1]["index"] if rows and rows[-1]["index"] > 0 else None
        newer = min(size, before + LEDGER_PAGE) if before < size else None
        return render_template("site/ledger.html", rows=rows, size=size, older=older,
                               newer=newer).encode()

    return _html(page_cache.ledger((request.query_string, LEDGER_PAGE), render))


@bp.get("/fund")
@allow(PUBLIC)
def fund():
    """The 505 fund: balance, money in and out, the latest donations and disbursements."""
    return render_template(
        "site/fund.html", totals=books.totals(),
        donations=[ledger_row(r.index, r.leaf)
                   for r in lookup.latest_of(["money_donation"], FUND_RECENT)],
        disbursements=[ledger_row(r.index, r.leaf)
                       for r in lookup.latest_of(["disbursement"], FUND_RECENT)])


@bp.get("/stats")
@allow(PUBLIC)
def stats_page():
    """The public figures, with charts drawn here as inline SVG and their numbers as tables."""
    return render_template("site/stats.html", totals=stats.public_stats(),
                           charts=figures.build(figures.series()))


# The contract keeps the ops checks under /api/v1; a probe configured with the usual root paths is
# sent there. 308, not 301/302: the method is kept, and it may be cached as permanent.
@bp.get("/healthz")
@allow(PUBLIC)
def healthz():
    """Liveness lives at /api/v1/healthz."""
    return redirect("/api/v1/healthz", code=308)


@bp.get("/readyz")
@allow(PUBLIC)
def readyz():
    """Readiness lives at /api/v1/readyz."""
    return redirect("/api/v1/readyz", code=308)


@bp.get("/assets/<path:name>")
@allow(PUBLIC)
def asset(name: str):
    """A static file by its content-hashed name, cached for a year."""
    found = current_app.extensions["site_assets"].find(name)
    if found is None:
        abort(404)
    response = send_file(found.path, max_age=None, conditional=True, etag=True)
    response.headers["Cache-Control"] = assets.LONG_CACHE
    return response
