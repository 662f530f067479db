"""What a release hands on, kept privately so that the next release need not make it again.

From edition 4 on a release is suppressed with what the latest earlier release of each period
hands on (``custody.publish.stats.History``), and that release's history holds what ITS
predecessors handed on: made again from the ledger, the chain costs one replay per earlier
release. So ``publish stats`` keeps each release's history (and its published values, for the
next revision statement) in the data directory::

    HOME/publish/state/<event seq>-<event hash>.json      mode 0600, never in a release

The file holds suppressed values, so it never leaves the data directory. It starts with a random
salt, and the ``published`` event names its SHA-256 (``state_sha256``): the salt makes the
digest say nothing about the hidden values (they cannot be guessed and hashed), and the digest
in the signed ledger makes a changed file one that is not used. A file that is missing, or does
not match its event's digest, is made again from the ledger as before (and not written: its
salt is gone, so no file could match). ``publish verify --recompute`` never reads these files.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from custody.publish.stats import History, Key

if TYPE_CHECKING:
    from custody.ledger.events import CustodyEvent

STATE_FORMAT = 1
DIGEST = "state_sha256"
"""The ``published`` event's detail naming the SHA-256 of the release's state file."""

Published = dict[tuple[str, str, str], int | None]
"""(table, period, column) -> published value (None: suppressed)."""


def state_dir(home: Path) -> Path:
    return home / "publish" / "state"


def state_bytes(published: Mapping[tuple[str, str, str], int | None], history: History) -> bytes:
    """The state file of a release: a fresh random salt, then its published values and the
    history it hands on (every list in the order the history holds it; the history's number is
    its event's sequence number, known only once the event is recorded, so it is not kept)."""
    state: dict[str, Any] = {
        "format": STATE_FORMAT,
        "salt": os.urandom(32).hex(),
        "published": [[*key, value] for key, value in published.items()],
        "values": [[*key, value] for key, value in history.values.items()],
        "hidden": [[*key, reason] for key, reason in history.hidden.items()],
        "equations": [[list(total), [list(part) for part in parts]] for total, parts in history.equations],
    }
    return (json.dumps(state, separators=(",", ":")) + "\n").encode("utf-8")


def digest(state: bytes) -> str:
    return hashlib.sha256(state).hexdigest()


def state_path(home: Path, event: CustodyEvent) -> Path:
    return state_dir(home) / f"{event.seq}-{event.hash}.json"


def write_state(home: Path, event: CustodyEvent, state: bytes) -> None:
    """Write the state of ``event``'s release atomically, readable by its owner only."""
    folder = state_dir(home)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=".state.", dir=folder)
    try:
        os.fchmod(handle, 0o600)
        with os.fdopen(handle, "wb") as file:
            file.write(state)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, state_path(home, event))
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _key(raw: Any) -> Key:
    if not (isinstance(raw, list) and len(raw) == 3 and all(isinstance(part, str) for part in raw)):
        raise ValueError(f"not a key: {raw!r}")
    return (raw[0], raw[1], raw[2])


def load_state(home: Path, event: CustodyEvent) -> tuple[Published, History] | None:
    """The published values and history of ``event``'s release from its state file; None when
    the event names no state digest, or the file is missing, unreadable or does not match it."""
    wanted = event.details.get(DIGEST)
    if not isinstance(wanted, str):
        return None
    try:
        raw = state_path(home, event).read_bytes()
    except OSError:
        return None
    if digest(raw) != wanted:
        return None
    try:
        state = json.loads(raw)
        if state["format"] != STATE_FORMAT:
            return None
        published: Published = {_key(row[:3]): row[3] for row in state["published"]}
        values = {_key(row[:3]): int(row[3]) for row in state["values"]}
        hidden = {_key(row[:3]): str(row[3]) for row in state["hidden"]}
        equations = [(_key(total), tuple(_key(part) for part in parts)) for total, parts in state["equations"]]
    except (ValueError, KeyError, TypeError, IndexError):
        return None
    return published, History(values, hidden, equations, event.seq)
