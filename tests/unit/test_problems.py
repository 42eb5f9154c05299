"""The error catalogue: every code raised anywhere in app/ and miniprogram_api/ has an HTTP status
and a Chinese title, and a typed error renders as problem+json with them."""
from __future__ import annotations

import ast
import inspect
import json
import re
from pathlib import Path

import pytest

from app import errors
from app.errors import AppError, Conflict, DomainError, InvalidTransition, NotFound
from miniprogram_api.problems import (
    _HTTP_CODES, CATALOGUE, KIND_STATUS, PROBLEM_MIMETYPE, render, status_of,
)

ROOT = Path(__file__).resolve().parents[2]
ERROR_CLASSES = {name: cls for name, cls in vars(errors).items()
                 if inspect.isclass(cls) and issubclass(cls, DomainError)}
CHINESE = re.compile(r"[\u4e00-\u9fff]")


def _string(node: ast.AST | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _name(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def raise_sites() -> list[tuple[str, str, str, int | None]]:
    """(where, error class, code, status named by AppError) for every error made with a code in
    the source: `Conflict("code", ...)`, `NotFound(...)` (its default code), `AppError("code",
    409, ...)`, `problem(409, "code", ...)`, and tables of `(ErrorClass, "code", ...)`."""
    found = []
    for path in sorted([*ROOT.glob("app/**/*.py"), *ROOT.glob("miniprogram_api/**/*.py"),
                        *ROOT.glob("public_site/**/*.py")]):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        where = str(path.relative_to(ROOT))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                name = _name(node.func)
                if name == "problem" and len(node.args) >= 2 and _string(node.args[1]):
                    status = node.args[0].value if isinstance(node.args[0], ast.Constant) else None
                    found.append((f"{where}:{node.lineno}", "problem", _string(node.args[1]),
                                  status))
                if name not in ERROR_CLASSES:
                    continue
                cls = ERROR_CLASSES[name]
                keyword = next((k.value for k in node.keywords if k.arg == "code"), None)
                if keyword is not None:
                    code = _string(keyword)
                elif name in ("NotFound", "ValidationFailed", "InvalidTransition"):
                    code = cls.default_code  # their first argument is not the code
                elif node.args:
                    code = _string(node.args[0])
                else:
                    code = cls.default_code
                if code is None:
                    continue  # a code computed at run time: caught by the table rule below
                status = None
                if name == "AppError" and len(node.args) >= 2:
                    status = node.args[1].value if isinstance(node.args[1], ast.Constant) else None
                found.append((f"{where}:{node.lineno}", name, code, status))
            elif isinstance(node, ast.Tuple) and len(node.elts) >= 2:
                name, code = _name(node.elts[0]), _string(node.elts[1])
                if name in ERROR_CLASSES and code:
                    found.append((f"{where}:{node.lineno}", name, code, None))
    return found


SITES = raise_sites()


def test_the_scan_finds_the_raise_sites_it_is_meant_to():
    codes = {code for _, _, code, _ in SITES}
    assert {"wish_already_claimed", "invalid_transition", "not_found", "validation_error",
            "wechat_code_invalid", "wechatpay_unavailable", "rate_limited",
            "insufficient_funds"} <= codes
    assert len(SITES) > 80


def test_every_code_raised_anywhere_has_a_catalogue_entry():
    missing = sorted({f"{code} ({where})" for where, _, code, _ in SITES if code not in CATALOGUE})
    assert missing == [], "add these codes to miniprogram_api/problems.py CATALOGUE"


def test_every_raise_site_keeps_the_status_of_its_kind():
    """A typed error's catalogue status is its kind's (a Conflict code is a 409); an AppError or
    problem() that names a status names the catalogue's."""
    wrong = []
    for where, name, code, status in SITES:
        if code not in CATALOGUE:
            continue
        if name in ("AppError", "problem"):
            if status is not None and status != CATALOGUE[code].status:
                wrong.append(f"{where}: {code} is {status} here, {CATALOGUE[code].status} there")
            continue
        kind = next(k for k in ERROR_CLASSES[name].__mro__ if k in KIND_STATUS)
        if kind is not DomainError and KIND_STATUS[kind] != CATALOGUE[code].status:
            wrong.append(f"{where}: {name}({code!r}) is a {KIND_STATUS[kind]} kind but the "
                         f"catalogue says {CATALOGUE[code].status}")
    assert wrong == []


def test_the_codes_the_edge_gives_http_errors_have_entries():
    assert set(_HTTP_CODES.values()) - set(CATALOGUE) == set()


@pytest.mark.parametrize("code", sorted(CATALOGUE))
def test_every_catalogue_entry_has_a_chinese_title_and_an_error_status(code):
    status, title = CATALOGUE[code]
    assert 400 <= status <= 599
    assert title != code and CHINESE.search(title), f"{code}: {title!r}"


@pytest.mark.parametrize("name", sorted(ERROR_CLASSES))
def test_every_error_kind_has_its_default_code_in_the_catalogue(name):
    assert ERROR_CLASSES[name].default_code in CATALOGUE


def test_a_typed_error_renders_as_problem_json_with_its_status_and_title():
    response = render(Conflict("wish_already_claimed", "这个心愿刚刚已被其他爱心人士认领"))

    assert response.status_code == 409 and response.mimetype == PROBLEM_MIMETYPE
    body = json.loads(response.get_data())
    assert body == {"type": "https://weixinyuan.example/problems/wish-already-claimed",
                    "title": "心愿已被认领", "status": 409, "code": "wish_already_claimed",
                    "detail": "这个心愿刚刚已被其他爱心人士认领"}


def test_an_invalid_transition_carries_the_status_and_action_it_refused():
    response = render(InvalidTransition("不能这样", current_status="open", action="fulfil"))

    body = json.loads(response.get_data())
    assert response.status_code == 409 and body["code"] == "invalid_transition"
    assert (body["current_status"], body["action"]) == ("open", "fulfil")


def test_retry_after_and_the_bearer_challenge_become_headers():
    from app.errors import Forbidden, Unauthenticated

    cooled = render(Forbidden("donor_cooldown", "稍后再来", retry_after=30))
    assert cooled.status_code == 403 and cooled.headers["Retry-After"] == "30"
    token = render(Unauthenticated("invalid_token", bearer_error="invalid_token"))
    assert token.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    assert render(Unauthenticated()).headers["WWW-Authenticate"] == "Bearer"


def test_the_older_app_error_still_renders_with_the_status_it_names():
    legacy = AppError("some_new_code", 418, "旧写法")

    assert status_of(legacy) == 418 and status_of(NotFound()) == 404
    body = json.loads(render(legacy).get_data())
    assert (body["status"], body["code"], body["detail"]) == (418, "some_new_code", "旧写法")
