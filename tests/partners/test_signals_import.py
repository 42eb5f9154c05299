"""`flask --app wsgi signals import FILE.csv --department D [--dry-run]`: the monthly file."""
from __future__ import annotations

from datetime import date, timedelta

from tests.cases.helpers import subject_id
from tests.factories import OTHER_VILLAGE, TOWN, VILLAGE

HEADER = ("external_id,kind,id_number,name,region_code,observed_at,self_paid_yuan,period_days,"
          "days,grade,relation,diagnosis_category,note")


def _csv(tmp_path, lines: list[str], bom: bool = True) -> str:
    path = tmp_path / "医保_2026-11.csv"
    text = "\r\n".join([HEADER, *lines]) + "\r\n"
    path.write_bytes(("\ufeff" if bom else "").encode() + text.encode("utf-8"))
    return str(path)


def _day(days_ago: int = 3) -> str:
    return (date.today() - timedelta(days=days_ago)).isoformat()


def _lines() -> list[str]:
    a, b = subject_id(31), subject_id(32)
    return [
        f"mi-1,medical_spend,{a},郑桂兰,{VILLAGE},{_day()},25000.00,30,,,,,",   # line 2
        f"mi-2,hospitalization,{b},林阿婆,{VILLAGE},{_day(5)} 08:30,,,20,,,,",  # line 3
        f"mi-3,medical_spend,{a},郑桂兰,{VILLAGE},{_day()},12.345,30,,,,,",     # line 4
        f"mi-4,disability_certified,350505196204150000,王,{VILLAGE},{_day()},,,,1,,,",  # line 5
        f"mi-1,medical_spend,{a},郑桂兰,{VILLAGE},{_day()},25000,30,,,,,",      # line 6
        f"mi-6,grid_report,{b},林阿婆,{OTHER_VILLAGE},{_day()},,,,,,,独居",      # line 7
        ",,,,,,,,,,,,",                                                          # blank (Excel)
    ]


def _run(app, path: str, *extra: str):
    return app.test_cli_runner().invoke(args=["signals", "import", path,
                                              "--department", "medical_insurance", *extra])


def _counts(app) -> tuple[int, int]:
    from app.cases.models import Alert, Signal
    from app.extensions import db

    with app.app_context():
        return db.session.query(Signal).count(), db.session.query(Alert).count()


def test_import_reports_accepted_duplicate_and_rejected_by_reason_with_line_numbers(
        app, tmp_path):
    result = _run(app, _csv(tmp_path, _lines()), "--region", TOWN)

    assert result.exit_code == 0, result.output + result.stderr
    report = result.stdout
    assert "6 lines: 2 accepted, 1 duplicate, 3 rejected" in report
    assert "rejected invalid_amount: 1" in report
    assert "rejected invalid_id_number: 1" in report
    assert "rejected region_out_of_scope: 1" in report
    assert "first rejected lines: 4 (invalid_amount), 5 (invalid_id_number), " \
           "7 (region_out_of_scope)" in report
    assert "signals" in result.stderr  # the progress bar, on stderr
    assert _counts(app) == (2, 2)  # 25,000 yuan in 30 days; 20 days in hospital


def test_importing_the_same_file_again_finds_every_line_a_duplicate(app, tmp_path):
    path = _csv(tmp_path, _lines()[:2], bom=False)
    assert _run(app, path).exit_code == 0
    again = _run(app, path)
    assert "2 lines: 0 accepted, 2 duplicate, 0 rejected" in again.stdout
    assert _counts(app) == (2, 2)


def test_dry_run_reports_the_same_and_writes_nothing(app, tmp_path):
    result = _run(app, _csv(tmp_path, _lines()), "--region", TOWN, "--dry-run")

    assert result.exit_code == 0, result.output + result.stderr
    assert "dry run (nothing written): 6 lines: 2 accepted, 1 duplicate, 3 rejected" \
        in result.stdout
    assert _counts(app) == (0, 0)


def test_an_unreadable_file_exits_non_zero_and_imports_nothing(app, tmp_path):
    missing = _run(app, str(tmp_path / "nope.csv"))
    not_utf8 = tmp_path / "gbk.csv"
    not_utf8.write_bytes((HEADER + "\n" + "mi-1,medical_spend,x,郑桂兰").encode("gbk"))
    wrong_header = tmp_path / "wrong.csv"
    wrong_header.write_text("编号,类型\n1,2\n", encoding="utf-8")

    for result in (missing, _run(app, str(not_utf8)), _run(app, str(wrong_header))):
        assert result.exit_code != 0
        assert "error: cannot read" in result.stderr
    assert "missing columns: external_id" in _run(app, str(wrong_header)).stderr
    assert _counts(app) == (0, 0)
