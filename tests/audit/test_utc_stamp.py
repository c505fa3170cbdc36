"""``utc_stamp``: the audit log's fixed-width UTC text, whose string order is time order."""

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.records.audit import utc_stamp

_AWARE = st.datetimes(
    min_value=datetime(1000, 1, 2),
    max_value=datetime(9999, 12, 30),
    timezones=st.sampled_from(
        [UTC, ZoneInfo("America/New_York"), timezone(timedelta(hours=5, minutes=30))]
    ),
)


@given(_AWARE)
def test_the_stamp_is_the_utc_instant_to_the_microsecond(at):
    text = utc_stamp(at)
    assert len(text) == len("2024-01-02T14:30:00.000000Z")
    assert text == at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    # against the UTC instant: an ambiguous local time (a DST fall-back hour) never equals
    # another zone's datetime in Python, even at the same instant
    assert datetime.fromisoformat(text) == at.astimezone(UTC)


@given(_AWARE, _AWARE)
def test_string_order_is_time_order(a, b):
    assert (utc_stamp(a) < utc_stamp(b)) == (a.astimezone(UTC) < b.astimezone(UTC))


def test_a_year_below_1000_keeps_four_digits():
    assert utc_stamp(datetime(999, 12, 31, 23, 0, tzinfo=UTC)) == "0999-12-31T23:00:00.000000Z"


def test_a_naive_datetime_is_refused():
    with pytest.raises(ValueError, match="aware"):
        utc_stamp(datetime(2024, 1, 2, 9, 30))
