"""RFC 3339 times: the one place custody reads, writes and takes the current time.

Every time custody writes is UTC with ``Z``: ``2026-11-01T20:03:00Z`` (``format_utc``), with a
fraction only where asked (a ledger event's time has microseconds: ``stamp``). These texts are
parts of the ledger's canonical event bytes, of signed receipts and of packages, so their form
never changes.

``parse`` is strict: a date, ``T``, a time with seconds, an optional fraction, and ``Z`` or a
``+hh:mm``/``-hh:mm`` offset (RFC 3339 section 5.6; no leap second, at most 64 characters).
A time without an offset is refused rather than guessed at. ``ValueError`` says why.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Literal

UTC = timezone.utc
EXAMPLE = "2026-11-01T14:03:00-06:00"
MAX_LENGTH = 64

_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))",
    re.ASCII,
)
_NO_OFFSET = re.compile(r"\d{4}-\d{2}-\d{2}(?:[Tt ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?", re.ASCII)

Timespec = Literal["seconds", "milliseconds", "microseconds"]


def now() -> datetime:
    """The current time, in UTC."""
    return datetime.now(UTC)


def format_utc(moment: datetime, timespec: Timespec = "seconds") -> str:
    """``moment`` in UTC as RFC 3339 with ``Z``: ``2026-11-01T20:03:00Z`` (``timespec``
    ``milliseconds`` or ``microseconds`` add a fraction of that many digits, zeros included).
    A naive ``moment`` is refused (``ValueError``): its zone would be a guess."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("a time without a time zone cannot be written as RFC 3339")
    return moment.astimezone(UTC).isoformat(timespec=timespec).replace("+00:00", "Z")


def stamp() -> str:
    """The current time with microseconds: the time of a ledger event or record."""
    return format_utc(now(), "microseconds")


def parse(text: str) -> datetime:
    """An RFC 3339 date-time, with its offset kept (``parse_utc`` converts to UTC).
    ``ValueError`` for anything else, saying what is wrong."""
    if not isinstance(text, str) or not text or len(text) > MAX_LENGTH:
        raise ValueError(f"not an RFC 3339 date-time (e.g. {EXAMPLE})")
    found = _RFC3339.fullmatch(text)
    if found is None:
        if _NO_OFFSET.fullmatch(text):
            raise ValueError(f"no time zone offset: an RFC 3339 date-time needs a date, a time and an offset (e.g. {EXAMPLE})")
        raise ValueError(f"not an RFC 3339 date-time (e.g. {EXAMPLE})")
    year, month, day, hour, minute, second, fraction, zulu, sign, off_hours, off_minutes = found.groups()
    if zulu:
        zone = UTC
    else:
        if int(off_hours) > 23 or int(off_minutes) > 59:
            raise ValueError(f"the offset {sign}{off_hours}:{off_minutes} is out of range")
        offset = timedelta(hours=int(off_hours), minutes=int(off_minutes))
        zone = timezone(-offset if sign == "-" else offset)
    micro = int((fraction or "0").ljust(6, "0")[:6])
    try:
        return datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), micro, tzinfo=zone)
    except ValueError as exc:
        raise ValueError(f"not a valid date-time ({exc})") from exc


def parse_utc(text: str) -> datetime:
    """``parse``, converted to UTC."""
    return parse(text).astimezone(UTC)
