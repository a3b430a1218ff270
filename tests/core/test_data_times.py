"""Times in data files: ISO 8601 or Unix seconds (milliseconds above 10^11), to UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from tunesmith.data.times import ISO_8601, UNIX_MILLISECONDS, UNIX_SECONDS, parse_time

DAY_TWO = datetime(1970, 1, 2, tzinfo=UTC)
NOV_5 = datetime(2026, 11, 5, 12, 0, tzinfo=UTC)


def test_unix_seconds_as_numbers_or_text_are_utc_moments():
    assert parse_time(86400) == (DAY_TWO, UNIX_SECONDS)
    assert parse_time("86400.0") == (DAY_TWO, UNIX_SECONDS)


def test_numbers_above_ten_to_the_eleven_are_milliseconds():
    seconds = NOV_5.timestamp()
    assert parse_time(int(seconds * 1000)) == (NOV_5, UNIX_MILLISECONDS)
    assert parse_time(str(int(seconds * 1000)))[0] == parse_time(seconds)[0]


def test_an_eight_digit_yyyymmdd_date_is_that_date_not_seconds_in_1970():
    # As Unix seconds 20261105 is 1970-08-23: a finance file or `--since 20261105` went to 1970.
    nov_5 = datetime(2026, 11, 5, tzinfo=UTC)
    assert parse_time("20261105") == (nov_5, ISO_8601)
    assert parse_time(20261105) == (nov_5, ISO_8601)
    east = timezone(timedelta(hours=1))
    assert parse_time("20261105", east)[0] == nov_5 - timedelta(hours=1)
    # Eight digits that are no date stay a number of seconds.
    assert parse_time("20261399") == (datetime.fromtimestamp(20261399, UTC), UNIX_SECONDS)


def test_iso_times_with_a_zone_are_converted_and_naive_ones_read_in_the_given_zone():
    assert parse_time("2026-11-05T13:00:00+01:00") == (NOV_5, ISO_8601)
    assert parse_time("2026-11-05 12:00")[0] == NOV_5
    east = timezone(timedelta(hours=2))
    assert parse_time("2026-11-05 14:00", east)[0] == NOV_5
    assert parse_time("1970-01-02")[0] == DAY_TWO


def test_datetime_values_from_parquet_are_kept():
    assert parse_time(datetime(2026, 11, 5, 12, 0)) == (NOV_5, ISO_8601)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "missing time"),
        ("  ", "missing time"),
        (float("nan"), "missing time"),
        ("inf", "not a finite number"),
        (True, "unparsable time"),
        ("next tuesday", "unparsable time 'next tuesday'"),
        (1e300, "out of range"),
    ],
)
def test_bad_times_are_a_value_error_with_a_short_reason(value, reason):
    with pytest.raises(ValueError, match=reason):
        parse_time(value)


@pytest.mark.parametrize("value", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_a_time_its_zone_moves_off_the_calendar_is_a_value_error_not_an_overflow(value):
    with pytest.raises(ValueError, match="is out of range"):
        parse_time(value)
