"""Running the stock ``ffprobe`` and ``ffmpeg`` programs: which ones (``MediaTools``), their
versions, the media wing's errors, and the small value helpers every media module shares
(ffprobe's numbers and times as exact integers, ledger-safe strings).

Errors::

    ConfigError           5
    └── MediaToolsMissing 5  ffprobe/ffmpeg not installed or not runnable
    BadInput              2
    ├── MediaUnreadable   2  ffprobe/ffmpeg cannot read the file as audio or video
    └── PacketListInvalid 2  bytes that are not a packet list (``custody.media.packets``)
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from custody.errors import BadInput, ConfigError
from custody.ledger.canonical import printable_path

INSTALL_HINT = "install it with 'apt-get install ffmpeg' (Debian/Ubuntu)"
PACKET_FORMAT = "custody-packets v1"
PACKET_COLUMNS = "#stream,dts,pts,duration,size,flags,sha256"
_STDERR_LIMIT = 2000


class MediaToolsMissing(ConfigError):
    """ffprobe or ffmpeg is not installed (or cannot be run). Exit 5."""

    def __init__(self, program: str, detail: str) -> None:
        self.program = program
        super().__init__(
            f"{program} is not available ({detail}); {INSTALL_HINT}, or name the program with "
            "CUSTODY_FFPROBE / CUSTODY_FFMPEG"
        )


class MediaUnreadable(BadInput):
    """ffprobe or ffmpeg cannot read the file as audio or video; ``detail`` is its message."""

    def __init__(self, path: str, detail: str) -> None:
        self.path = path
        self.detail = detail
        super().__init__(f"{printable_path(path)}: cannot be read as audio or video: {detail}")


class PacketListInvalid(BadInput):
    """Bytes that are not a ``custody-packets v1`` list."""


@dataclass(frozen=True)
class MediaTools:
    """The programs to run: names looked up on PATH, or paths."""

    ffmpeg: str = "ffmpeg"
    ffprobe: str = "ffprobe"
    in_process: bool = False
    """Ingest's inspection demuxes in this process with PyAV where it can
    (``custody.media.inprocess``), and runs ffprobe only for what that cannot read."""

    def version(self, program: str) -> str:
        """``"ffprobe 5.1.9-0+deb12u1"``: the program's name and version. Raises
        ``MediaToolsMissing`` if it cannot be run."""
        return _version(program)


DEFAULT_TOOLS = MediaTools()


_REPORTED_VERSIONS: dict[str, str] = {}


def _json_or_none(data: bytes | None) -> Any:
    import json

    try:
        return json.loads(data or b"")
    except ValueError:
        return None


def _version_in(raw: Any, program: str) -> str | None:
    """The version ffprobe reported with ``-show_program_version`` (remembered for
    ``_version``), in ``_version``'s form; None when absent."""
    info = raw.get("program_version") if isinstance(raw, dict) else None
    number = info.get("version") if isinstance(info, dict) else None
    if not isinstance(number, str) or not number.strip():
        return None
    version = f"ffprobe {number.split()[0]}"
    _REPORTED_VERSIONS.setdefault(program, version)
    return version


@functools.lru_cache(maxsize=8)
def _version(program: str) -> str:
    if program in _REPORTED_VERSIONS:
        return _REPORTED_VERSIONS[program]
    done = _run([program, "-version"], program)
    words = done.stdout.decode("utf-8", "replace").split()
    name = os.path.basename(program)
    if len(words) >= 3 and words[1] == "version":
        return f"{words[0]} {words[2]}"
    return f"{name} (unknown version)"


def _run(args: list[str], program: str) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(args, capture_output=True, check=False)
    except OSError as exc:
        raise MediaToolsMissing(program, f"cannot run {program!r}: {exc.strerror or exc}") from exc


def _input_url(path: str | os.PathLike[str]) -> str:
    """An ffmpeg input that is always the local file: ``file:`` keeps names such as
    ``concat:a|b`` or ``-x.mp4`` from being read as protocols or options."""
    return "file:" + os.path.abspath(os.fspath(path))


_ADDRESS = re.compile(r" @ 0x[0-9a-f]+\]")


def _tail(stderr: bytes | str, path: str | os.PathLike[str] | None = None) -> str:
    """The last lines of ffmpeg's stderr, joined, without context addresses, and naming the
    file by its base name."""
    text = stderr.decode("utf-8", "replace") if isinstance(stderr, bytes) else stderr
    if path is not None:
        text = text.replace(_input_url(path), os.path.basename(os.fspath(path)))
    text = _ADDRESS.sub("]", text)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    joined = "; ".join(lines[-6:])
    return joined[-_STDERR_LIMIT:] or "no message"


def _clean(value: str) -> str:
    """A string that can go into a canonical event (no lone surrogates, no NULs)."""
    return value.encode("utf-8", "backslashreplace").decode("utf-8").replace("\0", "\\x00")


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return None
    return None


def _us(seconds: Any) -> int | None:
    """Microseconds from ffprobe's decimal seconds string (exact; None for N/A)."""
    if not isinstance(seconds, str):
        return None
    try:
        value = Decimal(seconds)
    except InvalidOperation:
        return None
    if not value.is_finite():
        return None
    return int((value * 1_000_000).to_integral_value(rounding="ROUND_FLOOR"))


def format_time(us: int) -> str:
    """``HH:MM:SS.mmm`` (negative times get a leading ``-``)."""
    sign = "-" if us < 0 else ""
    ms = abs(us) // 1000
    return f"{sign}{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"
