"""The public site through HTTP: each page's content, headers, assets and weight."""
from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

PAGES = ("/", "/ledger", "/fund", "/stats")
HASHED = re.compile(r"^/assets/[\w.-]+\.[0-9a-f]{12}\.(css|js)$")


class Links(HTMLParser):
    """Every src and href of a page, and the scripts without a src (inline)."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[tuple[str, str]] = []
        self.inline_scripts = 0
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for name in ("src", "href"):
            if attrs.get(name) is not None:
                self.urls.append((tag, attrs[name]))
        if tag == "script" and not attrs.get("src"):
            self.inline_scripts += 1
        if any(name.startswith("on") for name in attrs):
            self.inline_scripts += 1  # an event handler attribute is an inline script too


def links(html: str) -> Links:
    parser = Links()
    parser.feed(html)
    return parser


def all_pages(site) -> list[str]:
    return [*PAGES, f"/w/{site.fulfilled_ids[0]}", f"/w/{site.claimed_id}",
            f"/w/{site.open_ids['red']}"]


def test_every_page_is_zh_cn_with_a_strict_csp_public_caching_and_no_cookie(client, site):
    for path in all_pages(site):
        res = client.get(path)
        assert res.status_code == 200, path
        assert res.mimetype == "text/html", path
        html = res.get_data(as_text=True)
        assert html.startswith("<!doctype html>\n<html lang=\"zh-CN\">"), path
        csp = res.headers["Content-Security-Policy"]
        script_src = re.search(r"script-src ([^;]*)", csp).group(1)
        assert script_src == "'self'", (path, csp)
        assert "unsafe-inline" not in csp and "default-src 'none'" in csp, path
        assert "Set-Cookie" not in res.headers, path
        assert res.headers["Cache-Control"] == "public, max-age=30", path
        assert links(html).inline_scripts == 0, path


def test_a_signed_in_caller_gets_no_shared_cache_copy(client, site, actors):
    res = client.get("/", headers=actors.donor().headers)
    assert res.status_code == 200 and res.headers["Cache-Control"] == "no-store"


def test_pages_load_nothing_from_another_origin_and_assets_are_hashed_and_immutable(
        client, site):
    for path in [*all_pages(site), "/api/v1/docs"]:
        html = client.get(path).get_data(as_text=True)
        parsed = links(html)
        assert parsed.inline_scripts == 0, path
        for tag, url in parsed.urls:
            assert not url.startswith(("http:", "https:", "//")), (path, tag, url)
            if tag in ("script", "link") and url != "data:,":  # data:, is "no favicon"
                assert HASHED.match(url), (path, url)
                res = client.get(url)
                assert res.status_code == 200, url
                assert res.headers["Cache-Control"] == "public, max-age=31536000, immutable"
                assert "Set-Cookie" not in res.headers
        assert "cdn.jsdelivr.net" not in html and "unpkg.com" not in html, path


def test_docs_page_runs_swagger_ui_from_the_app_without_inline_script(client):
    res = client.get("/api/v1/docs")
    html = res.get_data(as_text=True)
    scripts = [url for tag, url in links(html).urls if tag == "script"]
    assert [s.split("/")[-1].split(".")[0] for s in scripts] == ["swagger-ui-bundle",
                                                                 "swagger-init"]
    assert "script-src 'self';" in res.headers["Content-Security-Policy"]
    assert 'data-spec-url="/api/v1/openapi.json"' in html


def test_an_asset_name_without_its_hash_or_outside_the_folder_is_404(client, app):
    assert client.get("/assets/site.css").status_code == 404
    assert client.get("/assets/../public_site/views.py").status_code == 404
    name = app.extensions["site_assets"].url_name("verify.js")
    assert client.get("/assets/" + name).status_code == 200


def test_each_page_weighs_under_100_kb_with_its_styles_and_scripts(client, site):
    for path in all_pages(site):
        html = client.get(path).get_data()
        total = len(html)
        for tag, url in links(html.decode()).urls:
            if tag in ("script", "link") and url.startswith("/assets/"):
                total += len(client.get(url).get_data())
        assert total < 100_000, (path, total)


def test_wish_wall_shows_open_wishes_most_urgent_first_with_a_word_for_each_level(
        client, site):
    html = client.get("/").get_data(as_text=True)
    words = re.findall(r'<span class="lv lv-(\w+)">(\S+)</span>', html)
    levels = [lv for lv, _ in words]
    assert levels == sorted(levels, key=["red", "orange", "yellow", "blue"].index)
    assert {("red", "紧急"), ("orange", "较急"), ("yellow", "一般"), ("blue", "关注")} <= set(words)
    for wish_id in site.open_ids.values():
        assert f'href="/w/{wish_id}"' in html
    assert site.claimed_id not in html and site.fulfilled_ids[0] not in html  # open only
    assert "界山镇" in html and "涂岭镇" in html


def test_wish_wall_filters_by_town_kind_category_and_level_with_a_plain_get(client, site):
    html = client.get("/?town=350505106").get_data(as_text=True)
    assert site.tuling_id in html and site.open_ids["red"] not in html
    assert '<option value="350505106" selected>涂岭镇</option>' in html
    html = client.get("/?level=red").get_data(as_text=True)
    assert site.open_ids["red"] in html and site.open_ids["blue"] not in html
    html = client.get("/?kind=education&category=child").get_data(as_text=True)
    assert site.tuling_id in html and site.open_ids["red"] not in html
    # An unknown filter value is ignored, not an error page.
    assert client.get("/?level=purple&town=x").status_code == 200


def test_wish_wall_pages_with_a_cursor_link_that_keeps_the_filters(client, site, monkeypatch):
    from public_site import views

    monkeypatch.setattr(views, "WALL_PAGE", 2)
    html = client.get("/?kind=goods").get_data(as_text=True)
    nxt = re.search(r'<a rel="next" href="([^"]+)"', html).group(1).replace("&amp;", "&")
    assert "kind=goods" in nxt and "cursor=" in nxt
    second = client.get(nxt).get_data(as_text=True)
    first_ids = set(re.findall(r'href="/w/(wsh_\w+)"', html))
    second_ids = set(re.findall(r'href="/w/(wsh_\w+)"', second))
    assert len(first_ids) == 2 and second_ids and not first_ids & second_ids
    res = client.get("/?cursor=forged")
    assert res.status_code == 422 and res.mimetype == "text/html"
    assert '<html lang="zh-CN">' in res.get_data(as_text=True)


def test_fulfilled_wish_shows_its_progress_with_dates_and_its_ledger_entry(client, site):
    html = client.get(f"/w/{site.fulfilled_ids[0]}").get_data(as_text=True)
    steps = re.findall(r'<li class="(done|todo)"><span class="step">(\S+)</span>', html)
    assert steps == [("done", "已发布"), ("done", "已认领"), ("done", "已送达"), ("done", "已实现")]
    entry = re.search(r'<li id="(\d+)" data-ledger-entry', html)
    assert entry, "no ledger entry on a fulfilled wish's page"
    assert f'href="/ledger#{entry.group(1)}"' in html
    assert re.search(r'<script src="/assets/verify\.[0-9a-f]{12}\.js" defer>', html)
    assert "郭师傅" in html  # the card's alias, from the card ...
    entry_html = html[entry.start():html.index("</li>", entry.start())]
    assert "郭师傅" not in entry_html  # ... never from the ledger entry


def test_claimed_wish_shows_progress_so_far_and_no_verifier(client, site):
    html = client.get(f"/w/{site.claimed_id}").get_data(as_text=True)
    steps = re.findall(r'<li class="(done|todo)"><span class="step">(\S+)</span>', html)
    assert steps == [("done", "已发布"), ("done", "已认领"), ("todo", "已送达"), ("todo", "已实现")]
    assert "data-ledger-entry" not in html and "<script" not in html


def test_unpublished_or_unknown_wish_is_a_404_page(client, site, actors):
    draft = actors.draft_wish(actors.caseworker())
    for wish_id in (draft["id"], "wsh_nosuchwish"):
        res = client.get(f"/w/{wish_id}")
        assert res.status_code == 404 and res.mimetype == "text/html"
        assert draft["title"] not in res.get_data(as_text=True)


def test_ledger_page_lists_entries_newest_first_in_pages_and_never_an_alias(
        client, site, monkeypatch):
    from public_site import views

    html = client.get("/ledger").get_data(as_text=True)
    indexes = [int(i) for i in re.findall(r'<li id="(\d+)" data-ledger-entry', html)]
    assert indexes == sorted(indexes, reverse=True) and len(indexes) >= 3
    for word in ("心愿实现", "捐款", "基金拨付", "爱心人士"):
        assert word in html
    assert "郭师傅" not in html and "林阿婆" not in html  # aliases some entries still carry
    monkeypatch.setattr(views, "LEDGER_PAGE", 2)
    html = client.get("/ledger").get_data(as_text=True)
    first = [int(i) for i in re.findall(r'<li id="(\d+)" data-ledger-entry', html)]
    older = re.search(r'<a rel="next" href="/ledger\?before=(\d+)"', html).group(1)
    html = client.get(f"/ledger?before={older}").get_data(as_text=True)
    second = [int(i) for i in re.findall(r'<li id="(\d+)" data-ledger-entry', html)]
    assert first == indexes[:2] and second == indexes[2:4]


def test_fund_page_shows_balance_money_in_and_out_and_purposes(client, site):
    html = client.get("/fund").get_data(as_text=True)
    if not site.donation_ids:
        pytest.skip("no fund routes on this branch")
    assert "¥220" in html and "¥250" in html and "¥30" in html  # balance, in, out
    assert "为受助老人购买轮椅一台" in html
    assert "内部备注" not in html  # a disbursement's note is internal


def test_stats_page_draws_each_chart_as_inline_svg_with_a_table(client, site):
    html = client.get("/stats").get_data(as_text=True)
    svgs = re.findall(r'<svg class="chart"[^>]*role="img"[^>]*>.*?</svg>', html, re.S)
    assert len(svgs) == 4
    assert html.count('<details><summary>查看数据表</summary>') == 4
    assert " style=" not in html  # the CSP allows no inline styles
    for title in ("每月实现的心愿", "按时送达的认领占比", "所需时间（中位数）", "各乡镇待认领的心愿"):
        assert f"<h2>{title}</h2>" in html
    table = html[html.index("<h2>各乡镇待认领的心愿</h2>"):]
    assert "<td>界山镇</td><td>1</td><td>1</td><td>1</td><td>1</td><td>4</td>" in table
    assert "<td>涂岭镇</td><td>0</td><td>1</td><td>0</td><td>0</td><td>1</td>" in table
