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


def application_payload(id_no: str | None = None, region: str = VILLAGE,
                        name: str = "陈阿妹") -> dict[str, Any]:
    return {"applicant": {"name": name, "id_number": id_no or subject_id(),
                          "phone": "13905951234", "region_code": region},
            "for_self": True,
            "situation": {"categories": ["illness"], "description": "丈夫住院，家中无收入"},
            "consents": [{"kind": "data_check", "given_by": "self", "notice_version": "2026-10"}]}


def spike_task(app, *, alert_at: datetime, id_no: str | None = None,
               region: str = VILLAGE) -> dict:
    """A medical-spend spike ingested at `alert_at`; returns the answer of the spiking item."""
    id_no = id_no or subject_id()
    history = spike_history(id_no, alert_at, monthly_fen=40_000)
    ingest(app, [dict(i, subject={**i["subject"], "region_code": region}) for i in history],
           now=alert_at)
    answers = ingest(app, [item(at=alert_at - timedelta(hours=3), id_no=id_no, region=region,
                                self_paid_fen=180_000)], now=alert_at)
    assert answers[0].get("alert_id"), answers
    return answers[0]


def enrol_beneficiary(alias: str = "阿婆", **overrides: Any) -> dict[str, Any]:
    """The `beneficiary` of an `enrolled` completion for a person not yet a beneficiary."""
    return {"alias": alias,
            "assessment": {"categories": ["illness"], "level": "orange"},
            "consents": [{"kind": "sensitive_data", "given_by": "self",
                          "notice_version": "2026-10"}], **overrides}
