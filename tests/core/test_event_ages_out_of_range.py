"""An age or a time outside the years 1 to 9999 (`--since 99999999d`, a zone that pushes the
year 1 back) is one line naming the flag, not an OverflowError's traceback."""

from __future__ import annotations

import pytest

from tunesmith.errors import UserInputError
from tunesmith.events.ages import parse_moment


@pytest.mark.parametrize(
    "given",
    ["99999999d", "1000000w", "1" * 400 + "d", "0001-01-01T00:00:00+05:00",
     "9999-12-31T23:59:59-05:00"],
)  # fmt: skip
def test_a_moment_past_the_years_datetime_holds_is_one_line(given):
    with pytest.raises(UserInputError, match="not a time between the years 1 and 9999") as err:
        parse_moment(given, "--since")
    assert str(err.value).startswith("--since '")


def test_the_earliest_and_latest_moments_still_parse():
    assert parse_moment("0001-01-01T00:00:00", "--since").year == 1
    assert parse_moment("9999-12-31T23:59:59+00:00", "--since").year == 9999


@pytest.mark.parametrize(
    "args",
    [("events", "list", "--since", "99999999d"), ("events", "tail", "--since", "99999999d"),
     ("events", "prune", "--delivered-before", "99999999d", "--dry-run")],
)  # fmt: skip
def test_the_events_commands_refuse_an_age_too_long_in_one_line(tmp_path, cli, args):
    outbox = tmp_path / "o.sqlite"
    outbox.write_bytes(b"")  # exists: the age is read before the outbox is
    result = cli(*args, "--outbox", str(outbox))
    assert result.exit_code == 2, result.output
    assert "not a time between the years 1 and 9999" in result.output
    assert "Traceback" not in result.output and "OverflowError" not in result.output
