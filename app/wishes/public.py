"""What the public may see of a wish: an allowlist card, an alias, an age band, a town."""
from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Integer, bindparam, false, literal_column, or_, select

from app.beneficiaries.models import Beneficiary, categories_of
from app.extensions import db
from app.pagination import after_condition
from app.wishes.models import PUBLISHED, Wish, age_band


@dataclass(frozen=True)
class PublicCard:
    """A published wish as the public sees it. Read from the columns the card shows and no
    identity column of the beneficiary (loading the ORM rows would fetch those, encrypted,
    for nothing); dumped by the same allowlist schema as a Wish."""

    id: str
    title: str
    story: str
    kind: str
    item: str | None
    estimated_value_fen: int
    level: str
    category_mask: int
    alias: str
    birth_year: int | None
    region_code: str
    status: str
    published_at: datetime | None
    due_at: datetime | None
    fulfilled_at: datetime | None

    @property
    def categories(self) -> list[str]:
        return categories_of(self.category_mask)

    @property
    def age_band(self) -> str | None:
        return age_band(self.birth_year)


def read_public_card(wish_id: str) -> PublicCard | None:
    """The card of a published, visible wish, or None.

    One statement on an autocommit connection: a single SELECT is its own consistent snapshot,
    and it saves the BEGIN and ROLLBACK round trips on the busiest read of the service. The
    statement is built once (`_card_query`): building it per read, and SQLAlchemy matching a new
    statement object to its cached compiled form, cost more CPU than the query itself.

    On PostgreSQL the compiled SQL runs on the pooled driver connection itself, with the column
    types' own result processing: SQLAlchemy's execution around one SELECT of a primary key cost
    ~150 µs of CPU, twice the query (bench/README.md, issue 11). Any driver error there hands the
    read to SQLAlchemy (after discarding a connection found dead), whose error handling (pool
    invalidation, the 503 of an outage) then applies as to every other statement.
    """
    engine = db.engine
    if engine.dialect.name == "postgresql":
        row = _read_on_driver(engine, wish_id)
        if row is not _FALL_BACK:
            return row
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        row = conn.execute(_card_query(), {"wish_id": wish_id}).first()
    return None if row is None else PublicCard(**row._mapping)


_FALL_BACK = object()


def _read_on_driver(engine, wish_id: str):
    sql, names, processors = _card_sql(engine.dialect)
    fairy = engine.raw_connection()  # the pool's checkout hooks (app/dbpool.py) still run
    try:
        driver = fairy.driver_connection
        try:
            driver.autocommit = True
            try:
                with driver.cursor() as cursor:
                    cursor.execute(sql, {"wish_id": wish_id})
                    row = cursor.fetchone()
            finally:
                driver.autocommit = False
        except engine.dialect.loaded_dbapi.Error as error:
            if engine.dialect.is_disconnect(error, driver, None):
                # What SQLAlchemy does on a disconnect: every connection of the pool opened
                # before now is reconnected on its next checkout, this one at once.
                engine.pool._invalidate(fairy, error)
            return _FALL_BACK
    finally:
        fairy.close()
    if row is None:
        return None
    return PublicCard(**{name: value if process is None else process(value)
                         for name, value, process in zip(names, row, processors)})


@functools.cache
def _card_sql(dialect) -> tuple[str, tuple[str, ...], tuple]:
    """The card's SELECT compiled for `dialect`, its column names and their result processors
    (what SQLAlchemy would apply to each value: UTCDateTime's conversion to UTC, for one)."""
    query = _card_query()
    sql = str(query.compile(dialect=dialect))
    names = tuple(column.name for column in query.selected_columns)
    processors = tuple(column.type.result_processor(dialect, None)
                       for column in query.selected_columns)
    return sql, names, processors


@functools.cache
def _card_query():
    # The published statuses as constants in the SQL text (no IN list expanded per execution).
    published = or_(*(Wish.status == literal_column(f"'{status}'") for status in PUBLISHED))
    return (select(*_card_columns())
            .join(Beneficiary, Beneficiary.id == Wish.beneficiary_id)
            .where(Wish.id == bindparam("wish_id"), published, Wish.hidden == false()))


_CARD_FIELDS = tuple(PublicCard.__dataclass_fields__)  # the card's fields, in their order
BENEFICIARY_FIELDS = ("alias", "birth_year")  # those read from the beneficiary, not the wish


@functools.cache
def _card_columns() -> tuple:
    """The columns a card is read from, one per field of PublicCard and in its order (the
    beneficiary's alias and birth year, the wish's own columns for the rest)."""
    return tuple(getattr(Beneficiary if name in BENEFICIARY_FIELDS else Wish, name)
                 for name in _CARD_FIELDS)


# --- the public feed -----------------------------------------------------------------------------

# Each sort's key: the columns a page is ordered by (ending in the unique id) and their direction.
FEED_KEYS: dict[str, tuple[tuple[str, ...], str]] = {
    "urgency": (("level_rank", "published_at", "id"), "asc"),  # red first, then the oldest
    "newest": (("published_at", "id"), "desc"),
}
def read_public_feed(*, sort: str, kind: str | None = None, level_rank: int | None = None,
                     category_bit: int | None = None, region: str | None = None,
                     after: list | None = None, limit: int) -> list[tuple[PublicCard, tuple]]:
    """Up to `limit` open, visible wishes in `sort` order after the key `after`, each as its
    public card with its sort key (for the next page's cursor).

    The card's columns only (no ORM objects: loading `Wish` rows joined their beneficiaries'
    encrypted identity columns and their consents, and cost ~3 ms of CPU a page, most of a feed
    miss), in one SELECT on an autocommit connection, as `read_public_card`. The statement of
    each shape (sort, which filters, first page or not) is built once (`_feed_query`), every value
    a bound parameter, so a read builds no SQL.
    """
    params: dict = {"limit": limit}
    for name, value in (("kind", kind), ("level_rank", level_rank),
                        ("category_bit", category_bit), ("region", region)):
        if value is not None:
            params[name] = value
    if after is not None:
        params.update((f"after_{i}", value) for i, value in enumerate(after))
    query = _feed_query(sort, *(name in params for name in (
        "kind", "level_rank", "category_bit", "region")), after is not None)
    width = len(_CARD_FIELDS)
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        rows = conn.execute(query, params).all()
    return [(PublicCard(*row[:width]), tuple(row[width:])) for row in rows]


@functools.cache
def _feed_query(sort: str, kind: bool, level_rank: bool, category_bit: bool, region: bool,
                after: bool):
    names, direction = FEED_KEYS[sort]
    keys = [getattr(Wish, name) for name in names]
    # `status = 'open' AND hidden = false` written as the partial feed indexes' predicate, with
    # the status a constant in the SQL text, so PostgreSQL matches it on every plan.
    query = (select(*_card_columns(), *keys)
             .join(Beneficiary, Beneficiary.id == Wish.beneficiary_id)
             .where(Wish.status == literal_column("'open'"), Wish.hidden == false()))
    if kind:
        query = query.where(Wish.kind == bindparam("kind"))
    if level_rank:
        query = query.where(Wish.level_rank == bindparam("level_rank", type_=Integer()))
    if category_bit:
        query = query.where(Wish.category_mask.op("&")(bindparam("category_bit",
                                                                 type_=Integer())) != 0)
    if region:
        query = query.where(Wish.region_code.startswith(bindparam("region")))
    if after:
        query = query.where(after_condition(
            keys, [direction] * len(keys),
            [bindparam(f"after_{i}", type_=key.type) for i, key in enumerate(keys)]))
    order = [key.asc() if direction == "asc" else key.desc() for key in keys]
    return query.order_by(*order).limit(bindparam("limit", type_=Integer()))
