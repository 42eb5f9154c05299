"""Working days in mainland China: the one place deadlines that count working days come from.

"A caseworker visits by the end of the next working day" and "claims are paid within 10 working
days" count the State Council's calendar: weekends off, public holidays off, and the make-up
working days (调休上班, often a Saturday or Sunday) on. The `chinesecalendar` package carries each
year's notice; a year it does not know yet (the notice for year N comes out in the autumn of N-1,
and a package release follows) can be supplied by the operator as data — `extra_years` below, from
the `WORKING_CALENDAR_FILE` setting — until the package catches up. A date in a year that neither
knows is refused loudly (`CalendarYearUnknown`), unless the calendar is told to count such a
year Monday to Friday (`unknown_years_as_weekdays`): its caller then owns the guess (the visit
deadlines do, so that no alert is lost at New Year; see app/cases/tasks.py), which is early
around holidays and late by the make-up working days a notice would add.

Deadlines are the end of a local (UTC+8; mainland China keeps no daylight saving time) day,
returned as aware UTC datetimes, as the database stores them.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Iterable, Mapping

import chinese_calendar

CHINA = timezone(timedelta(hours=8), "CST")
END_OF_DAY = time(23, 59, 59)


class CalendarYearUnknown(RuntimeError):
    """The working-day calendar of this year is not known (package too old, no operator data)."""

    def __init__(self, year: int) -> None:
        super().__init__(
            f"the mainland China working-day calendar for {year} is unknown: upgrade the "
            f"chinesecalendar package or add {year} to WORKING_CALENDAR_FILE")
        self.year = year


@dataclass(frozen=True)
class ExtraYear:
    """One year's notice, as published: holidays off (even on weekdays) and make-up working
    days on (even on weekends). Any other day is a working day from Monday to Friday."""

    holidays: frozenset[date] = field(default_factory=frozenset)
    workdays: frozenset[date] = field(default_factory=frozenset)


def load_extra_years(path: str | None) -> dict[int, ExtraYear]:
    """Read `{"2027": {"holidays": ["2027-01-01", ...], "workdays": ["2027-02-06", ...]}}`."""
    if not path:
        return {}
    with open(path, encoding="utf-8") as handle:
        raw = json.load(handle)
    years: dict[int, ExtraYear] = {}
    for year_text, days in raw.items():
        year = int(year_text)
        holidays = frozenset(date.fromisoformat(d) for d in days.get("holidays", []))
        workdays = frozenset(date.fromisoformat(d) for d in days.get("workdays", []))
        stray = [d for d in holidays | workdays if d.year != year]
        if stray or holidays & workdays:
            raise ValueError(f"WORKING_CALENDAR_FILE: year {year} lists days of another year "
                             f"or a day both off and on: {sorted(stray or holidays & workdays)}")
        years[year] = ExtraYear(holidays, workdays)
    return years


class WorkingCalendar:
    """Is a day a working day; what is the n-th working day after a day."""

    def __init__(self, extra_years: Mapping[int, ExtraYear] | None = None, *,
                 unknown_years_as_weekdays: bool = False) -> None:
        self.extra_years = dict(extra_years or {})
        self.unknown_years_as_weekdays = unknown_years_as_weekdays

    def knows(self, year: int) -> bool:
        """Whether this year's notice is known (the package or the operator's file)."""
        if year in self.extra_years:
            return True
        try:
            chinese_calendar.is_workday(date(year, 7, 1))
        except NotImplementedError:
            return False
        return True

    def is_working_day(self, day: date) -> bool:
        extra = self.extra_years.get(day.year)
        if extra is not None:
            if day in extra.holidays:
                return False
            return day in extra.workdays or day.weekday() < 5
        try:
            return chinese_calendar.is_workday(day)
        except NotImplementedError:
            if self.unknown_years_as_weekdays:
                return day.weekday() < 5
            raise CalendarYearUnknown(day.year) from None

    def working_days_after(self, day: date, count: int) -> date:
        """The `count`-th working day strictly after `day` (count >= 1)."""
        if count < 1:
            raise ValueError("count must be at least 1")
        current = day
        while count:
            current += timedelta(days=1)
            if self.is_working_day(current):
                count -= 1
        return current

    def end_of_working_days_after(self, moment: datetime, count: int) -> datetime:
        """The end (23:59:59 in mainland China) of the `count`-th working day after the local
        day of `moment`, in UTC. `count=1` is "by the end of the next working day"."""
        local_day = moment.astimezone(CHINA).date()
        due_day = self.working_days_after(local_day, count)
        return datetime.combine(due_day, END_OF_DAY, tzinfo=CHINA).astimezone(timezone.utc)

    def working_days_between(self, start: datetime, end: datetime) -> int:
        """Working days after `start`'s local day up to and including `end`'s local day: how many
        working days a thing took (0 when it was done the same day or on days off)."""
        first = start.astimezone(CHINA).date()
        last = end.astimezone(CHINA).date()
        return sum(1 for d in _days(first + timedelta(days=1), last) if self.is_working_day(d))


def _days(first: date, last: date) -> Iterable[date]:
    current = first
    while current <= last:
        yield current
        current += timedelta(days=1)
