"""The scheduler and the rules agree on which session plays Friday (issue 14 item 11, D151):
wherever the cadence fires the management window or the assignment check - Friday, Thursday
in a Good Friday week, 12:45 on an early close - the rules' clock says the week's last session
and the expiry session, and on no other session."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from engine.market import calendar
from engine.rules.prepare import clock_fields
from scheduler.cadence import EventKind, day_plan, spec_from


def test_the_rules_see_friday_exactly_where_the_scheduler_fires_fridays_jobs(bundled):
    spec = spec_from(bundled.model)
    cadence = calendar.cadence_of(bundled.model)
    shift = bundled.model.cadence.early_close_shift_minutes
    day, thursdays = date(2023, 1, 2), []
    while day <= date(2025, 12, 31):
        plan = day_plan(day, spec)
        kinds = {k for _, k in plan.events}
        for at, _ in plan.events:
            ny = at.astimezone(calendar.NEW_YORK)
            clock = clock_fields(ny, calendar.is_early_close(day), shift, cadence)
            fires_friday = {EventKind.MANAGEMENT, EventKind.ASSIGNMENT_CHECK} <= kinds
            assert clock["clock_last_session_of_week"] is fires_friday, at
            assert clock["clock_expiry_session"] is fires_friday, at
            assert clock["clock_session"] is True
        if EventKind.MANAGEMENT in kinds and day.weekday() == 3:
            thursdays.append(day)
        day += timedelta(days=1)
    # The Thursdays before Good Friday (2023-04-07, 2024-03-29, 2025-04-18) and before
    # Independence Day on a Friday (2025-07-04; 2025-07-03 is also an early close).
    assert thursdays == [date(2023, 4, 6), date(2024, 3, 28), date(2025, 4, 17), date(2025, 7, 3)]


def test_weekends_and_holidays_are_not_sessions_for_the_rules(bundled):
    for day in (date(2024, 3, 29), date(2024, 11, 28), date(2024, 11, 30), date(2024, 12, 1)):
        ny = datetime.combine(day, time(10, 0), tzinfo=calendar.NEW_YORK)
        clock = clock_fields(ny, False, 120, calendar.cadence_of(bundled.model))
        assert clock["clock_session"] is False
        assert clock["clock_last_session_of_week"] is False
        assert clock["clock_expiry_session"] is False
