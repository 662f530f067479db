"""Backends the store contract suite runs against.

Each entry of ``BACKENDS`` names a fixture that yields a fresh, empty-enough store. Tests use
unique key prefixes, so a backend may share one bucket across tests.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from storage.base import ObjectStore
from storage.local import LocalStore

BACKENDS = ["local_store"]


@pytest.fixture
def local_store(tmp_path: Path) -> Iterator[ObjectStore]:
    yield LocalStore.create(tmp_path / "store")


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest) -> ObjectStore:
    return request.getfixturevalue(request.param)  # type: ignore[no-any-return]


@pytest.fixture
def prefix() -> str:
    return f"contract/{uuid.uuid4().hex[:12]}/"
