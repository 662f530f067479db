"""custody.ledger.transaction: the one boundary between the ledger and its database. Whatever
reads or writes the tables (Ledger, the queries of the other wings, the raw-cursor scans) leaves
with the project's errors, never SQLAlchemy's or the driver's."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from custody.errors import LedgerCorrupt, LedgerUnavailable
from custody.ledger import queries
from custody.ledger.database import Ledger
from custody.ledger.tables import tree_nodes


def _no_schema(tmp_path: Path) -> Ledger:
    sqlite3.connect(tmp_path / "empty.db").close()
    return Ledger(f"sqlite:///{tmp_path / 'empty.db'}")


def test_a_sqlalchemy_error_leaves_as_ledger_unavailable_naming_the_database(tmp_path: Path) -> None:
    ledger = _no_schema(tmp_path)
    with pytest.raises(LedgerUnavailable, match=r"cannot use the ledger database sqlite:///.*empty\.db: .*no such table: events"):
        ledger.head()
    with pytest.raises(LedgerUnavailable, match="no such table: events"):
        list(ledger.events())
    with pytest.raises(LedgerUnavailable, match="no such table: checkpoint_anchors"):
        queries.anchor_rows(ledger)


def test_the_drivers_own_error_from_a_raw_cursor_is_translated_too(tmp_path: Path) -> None:
    ledger = _no_schema(tmp_path)
    with pytest.raises(LedgerUnavailable, match="no such table: events") as raised:
        list(queries.events_by_action_rows(ledger, ["incident-created"], 10))
    assert isinstance(raised.value.__cause__, sqlite3.OperationalError)
    with pytest.raises(LedgerUnavailable, match="no such table: tree_nodes") as raised:
        for batches in queries.node_hash_runs(ledger, [(0, 0, 4)], 256):
            list(batches)
    assert isinstance(raised.value.__cause__, sqlite3.OperationalError)


def test_a_missing_run_of_tree_nodes_is_ledger_corrupt(tmp_path: Path) -> None:
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    ledger.create()
    for index in range(5):
        ledger.append("noted", actor=f"officer-{index}")
    stored = [list(batch) for run in queries.node_hash_runs(ledger, [(0, 0, 5)], 2) for batch in run]
    assert [len(batch) for batch in stored] == [2, 2, 1]
    assert [h for batch in stored for h in batch] == list(ledger.leaf_hashes_from(0))
    with pytest.raises(LedgerCorrupt, match="tree nodes of level 0 are missing from 5"):
        for run in queries.node_hash_runs(ledger, [(0, 0, 6)], 2):
            list(run)


def test_an_append_that_meets_stored_tree_rows_is_ledger_corrupt_and_appends_nothing(tmp_path: Path) -> None:
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    ledger.create()
    ledger.append("noted", actor="officer")
    with ledger.engine.begin() as conn:
        conn.execute(tree_nodes.insert().values(level=0, idx=1, hash="00" * 32))
    with pytest.raises(LedgerCorrupt, match="cannot append event 1: the ledger already holds tree data for it"):
        ledger.append("noted", actor="officer")
    assert ledger.head()[0] == 1


def test_a_locked_database_names_the_wait_and_what_to_do(tmp_path: Path) -> None:
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}", busy_timeout=0.2)
    ledger.create()
    holder = sqlite3.connect(tmp_path / "ledger.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(LedgerUnavailable, match=r"locked by another writer and stayed locked for 0\.2 s"):
            ledger.append("noted", actor="officer")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert ledger.append("noted", actor="officer").seq == 0
