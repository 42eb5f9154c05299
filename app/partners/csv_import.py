"""The monthly file a department hands over: a CSV of signals, through the same `ingest_signals`
as the API, in batches of 1000.

Columns (header row required, names as below, order free, extra columns ignored; UTF-8, with or
without the BOM Excel writes; comma-separated):

    external_id, kind, id_number, name, region_code, observed_at,
    self_paid_fen | self_paid_yuan, period_days, days, grade, relation, diagnosis_category, note

`observed_at` is RFC 3339 (`2026-11-03T09:00:00+08:00`), or a date / date and time without an
offset (`2026-11-03`, `2026-11-03 09:00`), read as Beijing time. Each kind reads its own columns
(the API's `data`): medical_spend self_paid_fen (or self_paid_yuan, at most 2 decimals) and
period_days; hospitalization days; disability_certified grade; death_in_household relation;
serious_illness diagnosis_category; grid_report note; unemployment_registered none. A line the
service rejects is reported with its line number and code; the others are stored.
"""
from __future__ import annotations

import csv
import io
import re
from collections import Counter
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, Callable, Iterator

from app.uow import unit_of_work

BATCH = 1000
BEIJING = timezone(timedelta(hours=8))
REQUIRED_COLUMNS = ("external_id", "kind", "id_number", "name", "region_code", "observed_at")
INT_COLUMNS = ("self_paid_fen", "period_days", "days", "grade")
KIND_COLUMNS: dict[str, tuple[str, ...]] = {
    "medical_spend": ("self_paid_fen", "period_days"),
    "hospitalization": ("days",),
    "disability_certified": ("grade",),
    "death_in_household": ("relation",),
    "serious_illness": ("diagnosis_category",),
    "grid_report": ("note",),
    "unemployment_registered": (),
}
SHOW_REJECTED = 10  # how many rejected line numbers the report names
_NAIVE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}(?::\d{2})?)?$")


class UnreadableFile(Exception):
    """The file cannot be read as the CSV described above (nothing was imported)."""


@dataclass
class ImportReport:
    lines: int = 0
    accepted: int = 0
    duplicate: int = 0
    rejected: Counter = field(default_factory=Counter)  # code -> count
    first_rejected: list[tuple[int, str]] = field(default_factory=list)  # (line, code)
    dry_run: bool = False

    def add(self, line: int, answer: dict[str, Any]) -> None:
        result = answer.get("result")
        if result == "accepted":
            self.accepted += 1
        elif result == "duplicate":
            self.duplicate += 1
        else:
            code = answer.get("code") or "invalid_signal"
            self.rejected[code] += 1
            if len(self.first_rejected) < SHOW_REJECTED:
                self.first_rejected.append((line, code))

    def text(self) -> str:
        head = "dry run (nothing written): " if self.dry_run else ""
        out = [f"{head}{self.lines} lines: {self.accepted} accepted, {self.duplicate} duplicate, "
               f"{sum(self.rejected.values())} rejected"]
        for code, count in sorted(self.rejected.items(), key=lambda kv: (-kv[1], kv[0])):
            out.append(f"  rejected {code}: {count}")
        if self.first_rejected:
            out.append("  first rejected lines: " + ", ".join(
                f"{line} ({code})" for line, code in self.first_rejected))
        return "\n".join(out)


def _observed_at(value: str) -> str:
    value = value.strip()
    if _NAIVE_TIME.match(value):
        text = value.replace(" ", "T")
        try:
            return datetime.fromisoformat(text).replace(tzinfo=BEIJING).isoformat()
        except ValueError:
            return value  # e.g. 2026-02-30: the service rejects it with its code
    return value


def _number(value: str) -> Any:
    """An integer cell as an int (Excel may write `3.0`); anything else as it is, for the
    service to reject with its code."""
    text = value.strip().replace(",", "")
    try:
        number = Decimal(text)
    except InvalidOperation:
        return value
    return int(number) if number == number.to_integral_value() else value


def _fen_from_yuan(value: str) -> Any:
    try:
        fen = Decimal(value.strip().replace(",", "")) * 100
    except InvalidOperation:
        return value
    return int(fen) if fen == fen.to_integral_value() else value


def row_to_item(row: dict[str, str]) -> dict[str, Any]:
    """One CSV row as the API's signal item."""
    cell = {k: (v or "").strip() for k, v in row.items() if k is not None}
    kind = cell.get("kind", "")
    data: dict[str, Any] = {}
    for column in KIND_COLUMNS.get(kind, ()):
        if cell.get(column):
            data[column] = _number(cell[column]) if column in INT_COLUMNS else cell[column]
    if kind == "medical_spend" and "self_paid_fen" not in data and cell.get("self_paid_yuan"):
        data["self_paid_fen"] = _fen_from_yuan(cell["self_paid_yuan"])
    return {"external_id": cell.get("external_id", ""), "kind": kind,
            "subject": {"id_number": cell.get("id_number", ""), "name": cell.get("name", ""),
                        "region_code": cell.get("region_code", "")},
            "observed_at": _observed_at(cell.get("observed_at", "")), "data": data}


def read_rows(raw: bytes) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, item) for each data row; UnreadableFile for a file that is not UTF-8 CSV
    with the required header."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UnreadableFile(f"not UTF-8 text (byte {exc.start}); save as “CSV UTF-8”") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [name.strip() for name in (reader.fieldnames or [])]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise UnreadableFile(f"missing columns: {', '.join(missing)}")
    reader.fieldnames = header
    try:
        for row in reader:
            if not any((v or "").strip() for k, v in row.items() if k is not None):
                continue  # a blank line Excel left at the end
            yield reader.line_num, row_to_item(row)
    except csv.Error as exc:
        raise UnreadableFile(f"line {reader.line_num}: {exc}") from None


def count_rows(raw: bytes) -> int:
    return sum(1 for _ in read_rows(raw))


def import_signals(raw: bytes, source: Any, ingest: Callable[[Any, list[dict]], list[dict]], *,
                   dry_run: bool = False,
                   on_batch: Callable[[int], None] | None = None) -> ImportReport:
    """Read the file and hand it to `ingest` (app.cases.signals.ingest_signals) in batches.

    Each batch is its own transaction (a file of 100,000 lines does not hold one transaction
    for minutes), so a run stopped halfway can simply be run again: what was stored answers
    `duplicate`. With `dry_run` every batch runs exactly as it would, inside one unit of work
    that is rolled back at the end: the report is what the real run would say (a line
    repeating an earlier line of the file is a duplicate), and nothing is written."""
    report = ImportReport(dry_run=dry_run)
    rows = read_rows(raw)
    with unit_of_work(read_only=True) if dry_run else nullcontext():
        batch: list[tuple[int, dict]] = []
        for line, item in rows:
            batch.append((line, item))
            if len(batch) == BATCH:
                _send(batch, source, ingest, report, on_batch)
                batch = []
        if batch:
            _send(batch, source, ingest, report, on_batch)
    return report


def _send(batch, source, ingest, report: ImportReport, on_batch) -> None:
    answers = ingest(source, [item for _, item in batch])
    for (line, _), answer in zip(batch, answers):
        report.lines += 1
        report.add(line, answer)
    if on_batch is not None:
        on_batch(len(batch))

