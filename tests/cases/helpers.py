"""Builders for the finding-people tests: signal items as a partner sends them, and ingestion
through the service the HTTP route and the CSV import call."""
from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone
from typing import Any

from tests.factories import VILLAGE, id_number

CHINA = timezone(timedelta(hours=8))
SUBJECT_NAME = "郑桂兰"
_serial = itertools.count(100)


def local(text: str) -> datetime:
    """A mainland China wall-clock time, as an aware datetime."""
    return datetime.fromisoformat(text).replace(tzinfo=CHINA)


def subject_id(serial: int | None = None) -> str:
    return id_number("19620415", f"{serial if serial is not None else next(_serial):03d}")


def item(kind: str = "medical_spend", *, external_id: str | None = None, at: datetime,
         id_no: str | None = None, region: str = VILLAGE, name: str = SUBJECT_NAME,
         **data: Any) -> dict[str, Any]:
    if kind == "medical_spend":
        data = {"self_paid_fen": 100_000, "period_days": 30, **data}
    return {"external_id": external_id or f"ext-{next(_serial)}", "kind": kind,
            "subject": {"id_number": id_no or subject_id(0), "name": name,
                        "region_code": region},
            "observed_at": at.isoformat(), "data": data}


def source(department: str = "medical_insurance", region: str | None = None,
           client_id: str = "cli_test_medical"):
    from app.cases.signals import SignalSource

    return SignalSource(client_id=client_id, department=department, region_code=region)


def ingest(app, items: list[dict], *, now: datetime, src=None) -> list[dict]:
    from app.cases.signals import ingest_signals

    with app.app_context():
        return ingest_signals(src or source(), items, now=now)


def spike_history(id_no: str, until: datetime, months: int = 12,
                  monthly_fen: int = 50_000) -> list[dict]:
    """A year of modest monthly medical spend before `until`."""
    return [item(at=until - timedelta(days=30 * (m + 2)), id_no=id_no, self_paid_fen=monthly_fen)
            for m in range(months)]
