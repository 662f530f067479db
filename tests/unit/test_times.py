"""custody.times: the forms custody writes (parts of canonical event bytes, receipts and
packages, so they must never change) and the strictness of what it reads."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from custody import times
from custody.ledger.database import Ledger

MINUS_SIX = timezone(timedelta(hours=-6))


def test_format_is_utc_with_z_and_whole_seconds_unless_asked() -> None:
    moment = datetime(2026, 11, 1, 14, 3, 0, 123456, tzinfo=MINUS_SIX)
    assert times.format_utc(moment) == "2026-11-01T20:03:00Z"
    assert times.format_utc(moment, "milliseconds") == "2026-11-01T20:03:00.123Z"
    assert times.format_utc(moment, "microseconds") == "2026-11-01T20:03:00.123456Z"
    assert times.format_utc(moment.replace(microsecond=0), "microseconds") == "2026-11-01T20:03:00.000000Z"


def test_format_refuses_a_time_without_a_zone() -> None:
    with pytest.raises(ValueError, match="without a time zone"):
        times.format_utc(datetime(2026, 11, 1, 14, 3))


def test_stamp_is_the_ledger_event_time_form(tmp_path: object) -> None:
    pattern = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z")
    assert pattern.fullmatch(times.stamp())
    ledger = Ledger(f"sqlite:///{tmp_path}/ledger.db")
    ledger.create()
    before = times.now()
    event = ledger.append("test", actor="tester")
    assert pattern.fullmatch(event.time)
    assert abs(times.parse(event.time) - before) < timedelta(seconds=5)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-01T14:03:00-06:00", datetime(2026, 11, 1, 14, 3, tzinfo=MINUS_SIX)),
        ("2026-11-01T20:03:00Z", datetime(2026, 11, 1, 20, 3, tzinfo=timezone.utc)),
        ("2026-11-01t20:03:00z", datetime(2026, 11, 1, 20, 3, tzinfo=timezone.utc)),
        ("2026-11-01T20:03:00.5+00:00", datetime(2026, 11, 1, 20, 3, 0, 500000, tzinfo=timezone.utc)),
        ("2026-11-01T20:03:00.123456789Z", datetime(2026, 11, 1, 20, 3, 0, 123456, tzinfo=timezone.utc)),
    ],
)
def test_parse_accepts_rfc3339_and_keeps_the_offset(text: str, expected: datetime) -> None:
    parsed = times.parse(text)
    assert parsed == expected and parsed.utcoffset() == expected.utcoffset()
    assert times.parse_utc(text).utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("2026-11-01", "no time zone offset"),
        ("2026-11-01T14:03:00", "no time zone offset"),
        ("2026-11-01 14:03:00", "no time zone offset"),
        ("2026-11-01T14:03-06:00", "not an RFC 3339 date-time"),
        ("2026-11-01 14:03:00Z", "not an RFC 3339 date-time"),
        ("20261101T140300Z", "not an RFC 3339 date-time"),
        ("2026-W44-7T14:03:00Z", "not an RFC 3339 date-time"),
        ("2026-11-01T14:03:00+0600", "not an RFC 3339 date-time"),
        ("2026-11-01T14:03:00-06", "not an RFC 3339 date-time"),
        ("2026-11-01T14:03:00Z\n", "not an RFC 3339 date-time"),
        ("２０２６-11-01T14:03:00Z", "not an RFC 3339 date-time"),
        ("", "not an RFC 3339 date-time"),
        ("2026-11-01T14:03:00." + "0" * 60 + "Z", "not an RFC 3339 date-time"),
        ("2026-02-30T14:03:00Z", "not a valid date-time"),
        ("2026-11-01T24:00:00Z", "not a valid date-time"),
        ("2026-12-31T23:59:60Z", "not a valid date-time"),
        ("2026-11-01T14:03:00+24:00", "out of range"),
    ],
)
def test_parse_refuses_anything_else_saying_why(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        times.parse(text)


def test_parse_refuses_what_is_not_text() -> None:
    with pytest.raises(ValueError):
        times.parse(None)  # type: ignore[arg-type]


@given(st.datetimes(min_value=datetime(1000, 1, 1), max_value=datetime(9999, 12, 30),
                    timezones=st.sampled_from([timezone.utc, MINUS_SIX, timezone(timedelta(hours=5, minutes=45))])))
def test_what_is_written_reads_back_to_the_same_second(moment: datetime) -> None:
    text = times.format_utc(moment)
    assert times.parse(text) == moment.replace(microsecond=0)
    micro = times.format_utc(moment, "microseconds")
    assert times.parse(micro) == moment
    assert times.format_utc(times.parse(micro), "microseconds") == micro
