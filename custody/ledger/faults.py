"""A fault-injection point for the tests that kill a process or cut its database connection in
the middle of an append (``CUSTODY_TEST_PAUSE``, read by ``cli/commands/db_cmd.py``: the core
never reads the environment).

``pause_first_append`` makes the first write transaction that reaches ``point`` write
``marker`` (JSON: ``pid``, ``point``, ``backend_pid``) and wait until ``marker`` is removed (at
most ``limit`` seconds), then go on. ``point`` is ``insert`` (just before the event's INSERT:
the append lock is held, nothing is written yet) or ``commit`` (the event, its tree nodes and
derived rows are written but not committed). It applies to every engine of the process.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import event
from sqlalchemy.engine import Engine

PausePoint = Literal["insert", "commit"]


def pause_first_append(point: PausePoint, marker: Path, limit: float) -> None:
    state = {"done": False}

    def pause(connection: Any) -> None:
        state["done"] = True
        dbapi = connection.connection.dbapi_connection
        backend = getattr(getattr(dbapi, "info", None), "backend_pid", None)
        temporary = marker.with_name(marker.name + ".tmp")
        temporary.write_text(json.dumps({"pid": os.getpid(), "point": point, "backend_pid": backend}))
        temporary.rename(marker)
        deadline = time.monotonic() + limit
        while marker.exists() and time.monotonic() < deadline:
            time.sleep(0.02)

    @event.listens_for(Engine, "before_cursor_execute")
    def _before(connection: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if not state["done"] and statement.lstrip().upper().startswith("INSERT INTO EVENTS"):
            if point == "insert":
                pause(connection)
            else:
                connection.info["custody_test_event_inserted"] = True

    @event.listens_for(Engine, "commit")
    def _commit(connection: Any) -> None:
        if connection.info.pop("custody_test_event_inserted", False) and not state["done"]:
            pause(connection)
