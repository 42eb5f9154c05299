"""The mainland China working-day calendar: holidays, make-up working days, unknown years."""
from __future__ import annotations

import json
from datetime import date, datetime, timezone

import pytest

from app.workdays import CalendarYearUnknown, WorkingCalendar, load_extra_years

CAL = WorkingCalendar()


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


@pytest.mark.parametrize("day, working", [
    (date(2026, 9, 30), True),    # a Wednesday
    (date(2026, 10, 1), False),   # National Day
    (date(2026, 10, 7), False),   # still the National Day holiday, a Wednesday
    (date(2026, 10, 10), True),   # make-up working Saturday after National Day
    (date(2026, 10, 11), False),  # an ordinary Sunday
    (date(2026, 2, 14), True),    # make-up working Saturday before Spring Festival
    (date(2026, 2, 16), False),   # Spring Festival, a Monday
])
def test_holidays_and_make_up_days_of_2026(day, working):
    assert CAL.is_working_day(day) is working


def test_next_working_day_skips_the_national_day_holiday():
    # An alert on the evening of 30 Sep 2026 (local): 1–7 Oct are off; due Thursday 8 Oct.
    alert = utc(2026, 9, 30, 12, 0)  # 20:00 in Beijing
    due = CAL.end_of_working_days_after(alert, 1)
    assert due == utc(2026, 10, 8, 15, 59, 59)  # 23:59:59 on 8 Oct in Beijing


def test_next_working_day_can_be_a_make_up_saturday():
    # Friday 9 Oct 2026 -> Saturday 10 Oct is a make-up working day.
    assert CAL.working_days_after(date(2026, 10, 9), 1) == date(2026, 10, 10)


def test_the_local_day_counts_not_the_utc_day():
    # 23:30 UTC on Monday 7 Dec 2026 is already Tuesday 8 Dec in Beijing: due Wednesday.
    due = CAL.end_of_working_days_after(utc(2026, 12, 7, 23, 30), 1)
    assert due == utc(2026, 12, 9, 15, 59, 59)


def test_ten_working_days_across_spring_festival():
    # Documents complete on Thursday 12 Feb 2026: 13, 14 (a make-up Saturday), then 15–23 Feb
    # off, 24–27, 28 (another make-up Saturday), 2, 3 and 4 March.
    assert CAL.working_days_after(date(2026, 2, 12), 10) == date(2026, 3, 4)


def test_working_days_between_counts_what_a_claim_took():
    # 30 Sep, then 8, 9 and (a make-up Saturday) 10 Oct.
    assert CAL.working_days_between(utc(2026, 9, 29, 2), utc(2026, 10, 10, 2)) == 4
    assert CAL.working_days_between(utc(2026, 9, 29, 2), utc(2026, 9, 29, 9)) == 0


def test_a_year_the_package_does_not_know_is_refused_loudly():
    with pytest.raises(CalendarYearUnknown, match="2031"):
        CAL.is_working_day(date(2031, 3, 3))


def test_operator_data_covers_a_year_the_package_does_not_know(tmp_path):
    path = tmp_path / "cal.json"
    path.write_text(json.dumps({"2031": {"holidays": ["2031-03-03"],
                                         "workdays": ["2031-03-08"]}}))
    cal = WorkingCalendar(load_extra_years(str(path)))
    assert cal.is_working_day(date(2031, 3, 3)) is False   # a Monday, declared off
    assert cal.is_working_day(date(2031, 3, 8)) is True    # a Saturday, declared on
    assert cal.is_working_day(date(2031, 3, 9)) is False   # an ordinary Sunday
    assert cal.working_days_after(date(2031, 3, 2), 1) == date(2031, 3, 4)


def test_operator_data_with_a_day_of_another_year_is_refused(tmp_path):
    path = tmp_path / "cal.json"
    path.write_text(json.dumps({"2031": {"holidays": ["2032-01-01"]}}))
    with pytest.raises(ValueError, match="2031"):
        load_extra_years(str(path))
