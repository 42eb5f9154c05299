"""Signals in: partner departments' facts about people, each answered accepted / duplicate /
rejected, evaluated against the alert rules, raising or joining an alert and its visit task.

`ingest_signals(source, items)` is the one entry: the HTTP route (POST /signals) and the CSV
import call it with the partner client's `SignalSource`. A batch is one unit of work; a replayed
batch finds every item already stored (per client and external id) and changes nothing. Rules
are evaluated for the new signals only: the spike rule reads the person's earlier medical spend
through the (person, kind, observed_at) index, so its cost follows the batch, not the table.
"""
from __future__ import annotations

import json
import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import DateTime, LargeBinary, any_, bindparam, select, text, type_coerce
from sqlalchemy.dialects import postgresql, sqlite

from app.beneficiaries.models import Beneficiary
from app.cases import rules as alert_rules
from app.cases.identity import id_hasher, id_number_is_valid, normalize_id_number, seal
from app.cases.lifecycle import ALERT, AlertStatus
from app.cases.models import Alert, Person, Signal
from app.cases.tasks import VISIT_ALERT, open_task
from app.divisions import COUNTY
from app.extensions import db
from app.regions import covers, is_region_code
from app.types import new_id, utcnow
from app.uow import lock, unit_of_work

log = logging.getLogger(__name__)

DEPARTMENTS = {"medical_insurance": "医保", "disabled_federation": "残联", "public_security": "公安",
               "human_resources": "人社", "housing": "住建", "education": "教育", "grid": "网格"}
MAX_BATCH = 1000
CLOCK_SKEW = timedelta(minutes=5)  # a partner's clock a little ahead is not a future signal

# Rejection codes, each a reason a department can fix in its export.
REJECTION_CODES = ("invalid_signal", "unknown_kind", "unknown_region", "region_out_of_scope",
                   "invalid_id_number", "observed_in_future", "invalid_amount")


@dataclass(frozen=True)
class SignalSource:
    client_id: str            # the partner client's public client_id
    department: str           # one of DEPARTMENTS
    region_code: str | None   # the client's region prefix; None = everywhere


class Rejected(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass
class _Valid:
    index: int
    external_id: str
    kind: str
    id_number: str
    name: str
    region_code: str
    observed_at: datetime
    data: dict[str, Any]


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _text(value: Any, limit: int) -> bool:
    return isinstance(value, str) and 0 < len(value.strip()) <= limit


def _known_region(code: Any) -> bool:
    """A division code (6, 9 or 12 digits) inside the county the service works in."""
    return isinstance(code, str) and is_region_code(code) and code.startswith(COUNTY)


def _check_data(kind: str, data: dict[str, Any]) -> dict[str, Any]:
    """The kind's `data`, checked and reduced to its known fields."""
    if kind == "medical_spend":
        if not _int(data.get("self_paid_fen")) or data["self_paid_fen"] < 0:
            raise Rejected("invalid_amount")
        period = data.get("period_days", 30)
        if not _int(period) or not 1 <= period <= 366:
            raise Rejected("invalid_signal")
        return {"self_paid_fen": data["self_paid_fen"], "period_days": period}
    if kind == "hospitalization":
        if not _int(data.get("days")) or not 0 <= data["days"] <= 3650:
            raise Rejected("invalid_signal")
        return {"days": data["days"]}
    if kind == "disability_certified":
        if not _int(data.get("grade")) or not 1 <= data["grade"] <= 4:
            raise Rejected("invalid_signal")
        return {"grade": data["grade"]}
    if kind == "death_in_household":
        if not _text(data.get("relation"), 32):
            raise Rejected("invalid_signal")
        return {"relation": data["relation"].strip()}
    if kind == "serious_illness":
        if not _text(data.get("diagnosis_category"), 64):
            raise Rejected("invalid_signal")
        return {"diagnosis_category": data["diagnosis_category"].strip()}
    if kind == "grid_report":
        note = data.get("note")
        if note is not None and not (isinstance(note, str) and len(note) <= 500):
            raise Rejected("invalid_signal")
        return {"note": note} if note else {}
    return {}


def _parse_time(value: Any) -> datetime:
    if not isinstance(value, str):
        raise Rejected("invalid_signal")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise Rejected("invalid_signal") from None
    if moment.tzinfo is None:
        raise Rejected("invalid_signal")  # a time without its offset could be off by 8 hours
    return moment


def validate_item(source: SignalSource, index: int, item: Any, now: datetime) -> _Valid:
    """One item checked, or `Rejected(code)` naming the first thing wrong with it."""
    if not isinstance(item, dict) or not _text(item.get("external_id"), 128):
        raise Rejected("invalid_signal")
    if item.get("kind") not in alert_rules.KINDS:
        raise Rejected("unknown_kind")
    subject, data = item.get("subject"), item.get("data", {})
    if not isinstance(subject, dict) or not isinstance(data, dict):
        raise Rejected("invalid_signal")
    region = subject.get("region_code")
    if not _known_region(region):
        raise Rejected("unknown_region")
    if source.region_code is not None and not covers([source.region_code], region):
        raise Rejected("region_out_of_scope")
    if not _text(subject.get("name"), 50):
        raise Rejected("invalid_signal")
    id_number = subject.get("id_number")
    if not isinstance(id_number, str) or not id_number_is_valid(normalize_id_number(id_number)):
        raise Rejected("invalid_id_number")
    observed_at = _parse_time(item.get("observed_at"))
    if observed_at > now + CLOCK_SKEW:
        raise Rejected("observed_in_future")
    return _Valid(index=index, external_id=item["external_id"].strip(), kind=item["kind"],
                  id_number=normalize_id_number(id_number), name=subject["name"].strip(),
                  region_code=region, observed_at=observed_at,
                  data=_check_data(item["kind"], data))


def _dialect():
    return postgresql if db.session.get_bind().dialect.name == "postgresql" else sqlite


def _among(column, values):
    """`column IN values`. On PostgreSQL `column = ANY(array)`: one parameter, so the statement
    is short and the same for every batch (psycopg parses a statement's text for its
    placeholders each time unless it is short enough to cache: the 1000-placeholder statements
    were ~40 % of a batch's samples)."""
    values = list(values)
    if _dialect() is postgresql:
        return column == any_(bindparam(None, values, type_=postgresql.ARRAY(column.type)))
    return column.in_(values)


def _per_key(keys: list[str], key_type: str, subquery: str):
    """PostgreSQL: `SELECT found.* FROM unnest(keys) AS k (key) CROSS JOIN LATERAL (subquery)
    AS found`, the subquery naming `k.key`: one index probe per key, in the keys' order. With
    `= ANY(keys)` the planner weighs 1000 probes against a scan of the whole table and, at
    10^5 persons, scans it (~30 ms a query, growing with the table); a lateral subquery is
    probed per key whatever the statistics (a LIMIT or a row lock keeps it from being
    flattened into a join the planner could hash)."""
    return text(f"SELECT found.* FROM unnest(CAST(:keys AS {key_type}[])) AS k (key)"
                f" CROSS JOIN LATERAL ({subquery}) AS found").bindparams(keys=keys)


def insert_ignoring_duplicates(model, rows: list[dict[str, Any]], conflict: list[str],
                               returning=None):
    """INSERT ... ON CONFLICT DO NOTHING: a concurrent twin of this batch cannot make it fail.

    On PostgreSQL the rows go as one JSON document, `INSERT ... SELECT ... FROM
    json_to_recordset(...)`: a short statement whatever the number of rows (a multi-row VALUES
    had 9 placeholders a row for SQLAlchemy to compile, never cached, and psycopg to parse),
    and one parameter the json module writes in C (arrays, one a column, which psycopg writes
    item by item in Python, took twice the CPU). Every row has the same keys. Elsewhere
    (SQLite) SQLAlchemy's executemany."""
    table = model.__table__
    if _dialect() is postgresql and rows:
        return _insert_from_json(table, rows, conflict, returning)
    statement = sqlite.insert(table).on_conflict_do_nothing(index_elements=conflict)
    if returning is not None:
        statement = statement.returning(*(table.c[column.key] for column in returning))
    return db.session.execute(statement, rows)


def _insert_from_json(table, rows: list[dict[str, Any]], conflict: list[str], returning):
    dialect = db.session.get_bind().dialect
    quote = dialect.identifier_preparer.quote
    names = list(rows[0])
    record, select_list, convert = [], [], {}
    for name in names:
        column_type = table.c[name].type
        if isinstance(column_type, LargeBinary):  # bytes travel as hex text
            record.append(f"{quote(name)} text")
            select_list.append(f"decode(r.{quote(name)}, 'hex')")
            convert[name] = bytes.hex
            continue
        record.append(f"{quote(name)} {column_type.compile(dialect=dialect)}")
        select_list.append(f"r.{quote(name)}")
        if isinstance(getattr(column_type, "impl", column_type), DateTime):
            process = column_type.bind_processor(dialect)  # UTCDateTime: aware, in UTC
            convert[name] = ((lambda v, process=process: process(v).isoformat()) if process
                             else datetime.isoformat)
    document = json.dumps([
        {name: (convert[name](value) if value is not None and name in convert else value)
         for name, value in row.items()} for row in rows])
    sql = (f"INSERT INTO {dialect.identifier_preparer.format_table(table)}"
           f" ({', '.join(quote(name) for name in names)})"
           f" SELECT {', '.join(select_list)}"
           f" FROM json_to_recordset(CAST(:rows AS json)) AS r ({', '.join(record)})"
           f" ON CONFLICT ({', '.join(quote(name) for name in conflict)}) DO NOTHING")
    if returning is not None:
        sql += " RETURNING " + ", ".join(quote(column.key) for column in returning)
    return db.session.execute(text(sql), {"rows": document})


@dataclass
class _Person:
    id: str
    region_code: str
    beneficiary_id: str | None


def _known_persons(hashes: list[str]) -> dict[str, _Person]:
    if _dialect() is postgresql:
        statement = _per_key(hashes, "varchar", "SELECT id_hash, id, region_code, beneficiary_id"
                             " FROM persons WHERE id_hash = k.key LIMIT 1")
    else:
        statement = select(Person.id_hash, Person.id, Person.region_code,
                           Person.beneficiary_id).where(Person.id_hash.in_(hashes))
    return {key: _Person(person_id, region_code, beneficiary_id)
            for key, person_id, region_code, beneficiary_id in db.session.execute(statement)}


def _persons(valid: list[_Valid], keys: list[str], now: datetime) -> dict[str, _Person]:
    """id hash -> person, made for the subjects seen for the first time (identity encrypted,
    linked to the beneficiary with the same ID number if there is one). `keys` are the items'
    id hashes. Three statements whatever the batch: look up, insert the new ones, look up
    those; and one UPDATE run over the persons who moved, if any."""
    newest: dict[str, _Valid] = {}
    for item, key in zip(valid, keys):
        if key not in newest or item.observed_at >= newest[key].observed_at:
            newest[key] = item
    hashes = sorted(newest)
    known = _known_persons(hashes)
    missing = [h for h in hashes if h not in known]
    if missing:
        linked = dict(db.session.execute(
            _per_key(missing, "varchar", "SELECT id_hash, id FROM beneficiaries"
                     " WHERE id_hash = k.key LIMIT 1") if _dialect() is postgresql else
            select(Beneficiary.id_hash, Beneficiary.id).where(Beneficiary.id_hash.in_(missing))
        ).all())
        rows = []
        for key in missing:
            item, person_id = newest[key], new_id("per")
            rows.append({"id": person_id, "id_hash": key, "region_code": item.region_code,
                         "name_enc": seal(item.name, "persons", "name", person_id),
                         "id_number_enc": seal(item.id_number, "persons", "id_number", person_id),
                         "beneficiary_id": linked.get(key), "created_at": now,
                         "updated_at": now})
        insert_ignoring_duplicates(Person, rows, ["id_hash"])
        known.update(_known_persons(missing))  # ours, or a concurrent batch's
    moved = []
    for key, item in newest.items():  # where the person lives now: the latest signal says
        person = known[key]
        if person.region_code != item.region_code:
            person.region_code = item.region_code
            moved.append({"person": person.id, "region": item.region_code})
    if moved:
        table = Person.__table__
        db.session.execute(table.update().where(table.c.id == bindparam("person"))
                           .values(region_code=bindparam("region"), updated_at=now), moved)
    return known


def ingest_signals(source: SignalSource, items: list[dict], *,
                   now: datetime | None = None, dry_run: bool = False) -> list[dict]:
    """Store a batch of signals and act on them; one answer per item, in order (see the module
    docstring). `now` is for tests and the demo seed: when the batch is taken to arrive.
    `dry_run` answers exactly as a real run would (alert ids included) and then rolls it all
    back (`signals import --dry-run`)."""
    if source.department not in DEPARTMENTS:
        raise ValueError(f"unknown department {source.department!r}")
    now = now or utcnow()
    answers: list[dict[str, Any]] = []
    valid: list[_Valid] = []
    seen: set[str] = set()
    for index, item in enumerate(items):
        external_id = item.get("external_id") if isinstance(item, dict) else None
        answer: dict[str, Any] = {"external_id": external_id if isinstance(external_id, str)
                                  else None}
        answers.append(answer)
        try:
            checked = validate_item(source, index, item, now)
        except Rejected as rejected:
            answer.update(result="rejected", code=rejected.code)
            continue
        answer["external_id"] = checked.external_id
        if checked.external_id in seen:  # the same id twice in one batch: the first one counts
            answer["result"] = "duplicate"
            continue
        seen.add(checked.external_id)
        valid.append(checked)

    with unit_of_work(read_only=dry_run):
        if valid:
            _store_and_evaluate(source, valid, answers, now)
    return answers


def _store_and_evaluate(source: SignalSource, valid: list[_Valid], answers: list[dict[str, Any]],
                        now: datetime) -> None:
    hasher = id_hasher()
    keys = [hasher(item.id_number) for item in valid]
    persons = _persons(valid, keys, now)
    person_of = {item.index: persons[key] for item, key in zip(valid, keys)}
    inserted = insert_ignoring_duplicates(Signal, [
        {"client_id": source.client_id, "external_id": item.external_id,
         "department": source.department, "kind": item.kind,
         "person_id": person_of[item.index].id, "region_code": item.region_code,
         "observed_at": item.observed_at, "data": item.data, "received_at": now}
        for item in valid], ["client_id", "external_id"],
        returning=(Signal.id, Signal.external_id)).all()
    signal_ids = {external_id: signal_id for signal_id, external_id in inserted}
    accepted: list[_Valid] = []
    for item in valid:
        if item.external_id in signal_ids:
            answers[item.index]["result"] = "accepted"
            accepted.append(item)
        else:
            answers[item.index]["result"] = "duplicate"
    if not accepted:
        return

    version, rules = alert_rules.current_rules()
    grouped = _by_person(accepted, person_of)
    spend = _spend_of(grouped, rules)
    fired: dict[str, list[str]] = defaultdict(list)   # person id -> rules fired
    for person_id, items in grouped.items():
        for item in items:
            fired[person_id] += alert_rules.evaluate(rules, item.kind, item.data,
                                                     item.observed_at, spend.get(person_id, ()))

    # Every accepted signal of a person with an open alert joins it; a person a rule fired for
    # gets one if they have none. Persons are locked in id order: two batches naming the same
    # person take turns, so neither makes a second open alert. FOR NO KEY UPDATE (key_share):
    # the signals just inserted hold FOR KEY SHARE on their persons (the foreign key), which a
    # plain FOR UPDATE would wait for, deadlocking two batches that name one person.
    person_ids = sorted(grouped)
    if fired and _dialect() is postgresql:  # in id order: the keys' order
        lock("person", _per_key(sorted(fired), "varchar", "SELECT id FROM persons"
                                " WHERE id = k.key FOR NO KEY UPDATE"))
    elif fired:
        lock("person", select(Person.id).where(Person.id.in_(sorted(fired)))
             .order_by(Person.id).with_for_update(key_share=True))
    if _dialect() is postgresql:
        open_alerts = select(Alert).from_statement(_per_key(
            person_ids, "varchar", "SELECT * FROM alerts"
            f" WHERE person_id = k.key AND status = '{AlertStatus.OPEN.value}' LIMIT 1"))
    else:
        open_alerts = select(Alert).where(Alert.person_id.in_(person_ids),
                                          Alert.status == AlertStatus.OPEN.value)
    alerts = {a.person_id: a for a in db.session.execute(open_alerts).scalars()}
    by_id = {p.id: p for p in persons.values()}
    for person_id in sorted(fired):
        names = sorted(set(fired[person_id]))
        if not names:
            continue
        level = alert_rules.level_of(rules, names)
        alert = alerts.get(person_id)
        if alert is None:
            person = by_id[person_id]
            # Ids given here, not at the flush: the alerts, tasks and their transitions of the
            # whole batch are then written together (one multi-row INSERT a table), not one
            # flush per alert for its id.
            alert = Alert(id=new_id("alr"), person_id=person_id, region_code=person.region_code,
                          status=None, level=level, reasons=names, opened_at=now)
            ALERT.move(alert, "raise", None, f"rules v{version}: {', '.join(names)}", at=now)
            open_task(VISIT_ALERT, person.region_code, person_id, now=now, alert_id=alert.id,
                      beneficiary_id=person.beneficiary_id)
            alerts[person_id] = alert
            log.info("alert %s raised for %s (%s)", alert.id, person_id, ", ".join(names))
        else:
            alert.level = alert_rules.more_urgent(alert.level, level)
            reasons = sorted(set(alert.reasons) | set(names))
            if reasons != alert.reasons:
                alert.reasons = reasons
    joined = []
    for item in accepted:
        alert = alerts.get(person_of[item.index].id)
        if alert is not None:
            answers[item.index]["alert_id"] = alert.id
            joined.append({"signal": signal_ids[item.external_id], "alert": alert.id})
    db.session.flush()  # the new alerts, before the signals point at them
    if joined and _dialect() is postgresql:  # one statement, the pairs as two arrays
        db.session.execute(_JOIN_ALERTS, {"signals": [j["signal"] for j in joined],
                                          "alerts": [j["alert"] for j in joined]})
    elif joined:
        table = Signal.__table__
        db.session.execute(table.update().where(table.c.id == bindparam("signal"))
                           .values(alert_id=bindparam("alert")), joined)


_JOIN_ALERTS = text(
    "UPDATE signals SET alert_id = pair.alert_id"
    " FROM unnest(CAST(:signals AS integer[]), CAST(:alerts AS varchar[])) AS pair (id, alert_id)"
    " WHERE signals.id = pair.id")


def _by_person(accepted: list[_Valid], person_of: dict[int, _Person]) -> dict[str, list[_Valid]]:
    grouped: dict[str, list[_Valid]] = defaultdict(list)
    for item in accepted:
        grouped[person_of[item.index].id].append(item)
    return grouped


def _spend_of(grouped: dict[str, list[_Valid]], rules
              ) -> dict[str, list[alert_rules.Spend]]:
    """The medical spend (stored, and this batch's, which is inserted) of the persons with new
    medical-spend signals, each over their own window (the rules' 30 days and the 12 months
    before, `spend_window`): one query for the batch, whose persons' index ranges
    (person_id, kind, observed_at) PostgreSQL reads in one bitmap scan, so its cost follows the
    batch, not the table. It reads the range all the windows span (one batch's windows are
    close: its signals are recent) and each person keeps their own window of it; the amount
    comes out of the JSON in the database, not as the whole document."""
    if not rules["medical_spend"]["alerts"]:
        return {}
    windows: dict[str, tuple[datetime, datetime]] = {}
    for person_id, items in grouped.items():
        ranges = [alert_rules.spend_window(rules, item.observed_at)
                  for item in items if item.kind == "medical_spend"]
        if ranges:
            windows[person_id] = (min(start for start, _ in ranges),
                                  max(end for _, end in ranges))
    if not windows:
        return {}
    # On PostgreSQL the time as the driver gives it (aware, in the session's zone): it is
    # compared, not shown, so UTCDateTime's conversion of each row is not needed.
    observed = (type_coerce(Signal.observed_at, DateTime(timezone=True))
                if _dialect() is postgresql else Signal.observed_at)
    spend: dict[str, list[alert_rules.Spend]] = defaultdict(list)
    for person_id, observed_at, fen in db.session.execute(
            select(Signal.person_id, observed, Signal.data["self_paid_fen"].as_string()).where(
                _among(Signal.person_id, sorted(windows)), Signal.kind == "medical_spend",
                Signal.observed_at >= min(start for start, _ in windows.values()),
                Signal.observed_at <= max(end for _, end in windows.values()))):
        start, end = windows[person_id]
        if start <= observed_at <= end:
            spend[person_id].append(alert_rules.Spend(observed_at, int(fen or 0)))
    return spend
