"""Canonical event bytes and the hash chain: any change to any byte of any event is found."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from custody.ledger.canonical import canonical_bytes
from custody.ledger.database import GENESIS, Ledger, event_hash


def test_canonical_form_is_sorted_compact_utf8() -> None:
    value = {"b": 1, "a": {"z": [1, "é"], "y": None}, "c": True}
    assert canonical_bytes(value) == '{"a":{"y":null,"z":[1,"é"]},"b":1,"c":true}'.encode()


@pytest.mark.parametrize("bad", [{"x": 1.5}, {1: "a"}, {"x": 2**60}, {"x": "\udcff"}, {"x": object()}])
def test_canonical_form_refuses_what_it_cannot_represent_exactly(bad: object) -> None:
    with pytest.raises((ValueError, UnicodeEncodeError)):
        canonical_bytes(bad)


def test_event_hash_is_the_rfc6962_leaf_hash() -> None:
    assert event_hash(b"hello world") == hashlib.sha256(b"\x00hello world").hexdigest()


def _ledger(tmp_path: Path, n: int) -> Ledger:
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    ledger.create()
    with ledger.transaction() as tx:
        for index in range(n):
            tx.append(
                "noted",
                actor=f"officer-{index}",
                subject={"evidence": f"{index:064x}"},
                details={"note": f"event {index}", "n": index, "nested": {"ok": True}},
            )
    return ledger


def test_chain_links_and_verifies(tmp_path: Path) -> None:
    ledger = _ledger(tmp_path, 5)
    events = list(ledger.events())
    assert events[0].prev_hash == GENESIS
    assert all(later.prev_hash == earlier.hash for earlier, later in zip(events, events[1:]))
    assert ledger.verify_chain() == (5, [])


COLUMNS = ["time", "actor", "role", "action", "subject_evidence", "details", "tool", "prev_hash", "hash"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seq=st.integers(0, 4), column=st.sampled_from(COLUMNS), position=st.integers(0, 10_000), flip=st.integers(1, 255))
def test_changing_any_byte_of_any_event_breaks_verification(
    tmp_path_factory: pytest.TempPathFactory, seq: int, column: str, position: int, flip: int
) -> None:
    tmp_path = tmp_path_factory.mktemp("chain")
    ledger = _ledger(tmp_path, 5)
    db = sqlite3.connect(tmp_path / "ledger.db")
    db.execute("DROP TRIGGER events_no_update")
    (value,) = db.execute(f"SELECT {column} FROM events WHERE seq = ?", (seq,)).fetchone()
    raw = bytearray(value.encode("utf-8"))
    index = position % len(raw)
    raw[index] = (raw[index] + flip) % 128 or 1
    changed = raw.decode("utf-8", "replace")
    if changed == value:
        return
    db.execute(f"UPDATE events SET {column} = ? WHERE seq = ?", (changed, seq))
    db.commit()
    db.close()
    count, findings = ledger.verify_chain()
    assert count == 5
    assert findings, f"changing {column} of event {seq} went unnoticed"
    assert any(f.subject in (f"event {seq}", f"event {seq + 1}") for f in findings)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    details=st.dictionaries(
        st.text(min_size=1, max_size=8),
        st.recursive(
            st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text(max_size=20),
            lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
            max_leaves=8,
        ),
        max_size=5,
    ),
    actor=st.text(min_size=1, max_size=20),
    incident=st.none() | st.text(min_size=1, max_size=12),
)
def test_stored_form_reassembles_to_the_canonical_bytes(
    tmp_path_factory: pytest.TempPathFactory, details: dict, actor: str, incident: str | None  # type: ignore[type-arg]
) -> None:
    """verify_chain hashes the stored columns; they must give exactly the bytes that were hashed."""
    ledger = Ledger(f"sqlite:///{tmp_path_factory.mktemp('form') / 'l.db'}")
    ledger.create()
    subject = {"evidence": "ab" * 32, **({"incident": incident} if incident else {})}
    try:
        appended = ledger.append("noted", actor=actor, subject=subject, details=details)
    except (ValueError, UnicodeEncodeError):
        return
    assert ledger.verify_chain() == (1, [])
    [stored] = list(ledger.events())
    assert stored.canonical() == appended.canonical()
