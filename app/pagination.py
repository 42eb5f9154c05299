"""Keyset (cursor) pagination: `?limit=&cursor=` -> {"items", "next_cursor"}.

A cursor is the sort key of the last item shown, signed with SECRET_KEY and bound to the list it
came from, so a forged or edited cursor is a 422 `invalid_cursor`, never a different page.
The query must be ordered by columns that end in a unique one (the id), which makes pages stable.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Sequence

from itsdangerous import BadData, URLSafeSerializer
from sqlalchemy import Select, and_, or_, tuple_

from app.errors import Invalid
from app.extensions import db
from app.settings import settings
from app.types import isoformat

DEFAULT_LIMIT, MAX_LIMIT = 20, 100


@dataclass
class Page:
    """One page of a list; views return it as is and the page schema dumps both fields."""

    items: list[Any]
    next_cursor: str | None


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(settings()["SECRET_KEY"], salt="keyset-cursor-v1")


def _encode_value(value: Any) -> list:
    if isinstance(value, datetime):
        return ["d", isoformat(value)]
    return ["v", value]


def _decode_value(item: Any) -> Any:
    if not (isinstance(item, list) and len(item) == 2 and item[0] in ("d", "v")):
        raise ValueError("bad cursor value")
    if item[0] == "d":
        return datetime.fromisoformat(item[1].replace("Z", "+00:00"))
    if not isinstance(item[1], (int, str)) or isinstance(item[1], bool):
        raise ValueError("bad cursor value")
    return item[1]


def encode_cursor(kind: str, values: Sequence[Any]) -> str:
    return _serializer().dumps({"k": kind, "v": [_encode_value(v) for v in values]})


def decode_cursor(kind: str, token: str, width: int) -> list[Any]:
    try:
        data = _serializer().loads(token)
        if not isinstance(data, dict) or data.get("k") != kind or len(data.get("v", [])) != width:
            raise ValueError("cursor for another list")
        return [_decode_value(v) for v in data["v"]]
    except (BadData, ValueError, TypeError, KeyError):
        raise Invalid("invalid_cursor", "分页游标无效或已被修改",
                      errors={"cursor": ["无效的游标"]}) from None


def after_condition(columns: Sequence, directions: Sequence[str], values: Sequence[Any]):
    """WHERE clause selecting rows strictly after `values` in the given order."""
    if len(set(directions)) == 1:
        left, right = tuple_(*columns), tuple_(*values)
        return left > right if directions[0] == "asc" else left < right
    clauses = []
    for i, (column, direction) in enumerate(zip(columns, directions)):
        beyond = column > values[i] if direction == "asc" else column < values[i]
        clauses.append(and_(*[c == v for c, v in zip(columns[:i], values[:i])], beyond))
    return or_(*clauses)


def keyset_page(query: Select, columns: Sequence, directions: Sequence[str], *, limit: int,
                cursor: str | None, cursor_kind: str, scalars: bool = True) -> Page:
    if cursor:
        values = decode_cursor(cursor_kind, cursor, len(columns))
        query = query.where(after_condition(columns, directions, values))
    order = [c.asc() if d == "asc" else c.desc() for c, d in zip(columns, directions)]
    result = db.session.execute(query.order_by(*order).limit(limit + 1))
    rows = list(result.scalars() if scalars else result)
    return page_of(rows, limit, cursor_kind, lambda last: [getattr(last, c.key) for c in columns])


def page_of(rows: list, limit: int, cursor_kind: str,
            key_of: Callable[[Any], Sequence[Any]]) -> Page:
    """A page of the first `limit` of `rows`, read as up to `limit + 1` rows after the cursor:
    the one more row says a next page exists, whose cursor is the last row's key (`key_of`)."""
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor(cursor_kind, key_of(rows[-1]))
    return Page(items=rows, next_cursor=next_cursor)
