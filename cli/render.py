"""Rendering text from outside (file names, actors, notes, tags read from videos, incident
fields, store keys) for humans: every control character is escaped, so that a terminal or a log
never receives an escape sequence, carriage return or line break that the tool did not write.

``printable`` is the one helper every command uses for such values in human-readable output;
``--json`` output keeps the exact values (JSON escapes control characters itself).
"""

from __future__ import annotations

from typing import Any

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# bidirectional overrides and isolates, and the Unicode line and paragraph separators: they
# reorder or break what a terminal shows without being C0/C1 controls
_INVISIBLE = frozenset("\u061c\u200e\u200f\u2028\u2029\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _escape(char: str) -> str:
    code = ord(char)
    if char in _NAMED:
        return _NAMED[char]
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8 (surrogateescape)
        return f"\\x{code - 0xDC00:02x}"
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}"


def _unsafe(char: str) -> bool:
    code = ord(char)
    return code < 0x20 or 0x7F <= code <= 0x9F or char in _INVISIBLE or 0xD800 <= code <= 0xDFFF


def printable(value: Any, *, keep_newlines: bool = False) -> str:
    """``value`` as text safe for a terminal: control characters (C0, DEL, C1), bidirectional
    controls, line separators and undecodable bytes become visible escapes (``\\x1b``,
    ``\\n``, ``\\r``, ``\\u202e``, ...). With ``keep_newlines``, line breaks are kept (for
    multi-line messages the tool composed itself)."""
    text = value if isinstance(value, str) else str(value)
    if not any(_unsafe(char) for char in text):
        return text
    return "".join(
        _escape(char) if _unsafe(char) and not (keep_newlines and char == "\n") else char for char in text
    )


def echo(message: Any = "", *, err: bool = False, nl: bool = True) -> None:
    """``click.echo`` for one human-readable line: whatever it holds from outside is shown with
    its control characters escaped (``printable``). Commands print lines through this."""
    import click

    click.echo(printable(message), err=err, nl=nl)


CONTROL_REFUSED = "control characters (escape sequences, line breaks, tabs, bidirectional controls)"


def refuse_control_characters(what: str, value: str) -> None:
    """``BadInput`` (exit 2) when ``value``, a name the ledger will keep, holds a control
    character: an actor or role must print as itself everywhere."""
    from custody.errors import BadInput

    if any(_unsafe(char) for char in value):
        raise BadInput(f"{what} {printable(value)!r} contains {CONTROL_REFUSED}; give it without them")
    if not value.strip():
        raise BadInput(f"{what} is empty; give a name")
