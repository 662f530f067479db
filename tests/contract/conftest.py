"""Backends the store contract suite runs against.

Each entry of ``BACKENDS`` names a fixture that yields a fresh, empty-enough store. Tests use
unique key prefixes, so a backend may share one bucket across tests.

* ``local_store``: the embedded directory store.
* ``s3_rgw_store``: ``S3Store`` on a real Ceph RGW with Object Lock (the session's one cluster,
  from ``tests/integration/conftest.py``); skipped when it cannot start, failed when ``CI`` is
  set. moto is deliberately not a backend here: it does not enforce locks.
"""

from __future__ import annotations

import importlib.util
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from storage.base import ObjectStore
from storage.local import LocalStore

BACKENDS = ["local_store", "s3_rgw_store"]
CAPABLE = {
    "Staging": ["local_store"],
    "UploadPlanning": ["s3_rgw_store"],
    "LocalPaths": ["local_store"],
    "BucketSetup": ["local_store", "s3_rgw_store"],
}
"""Which backends offer each optional capability of ``storage.base``; a test checks that this
table is what ``isinstance`` says, so a backend cannot gain a capability untested."""


def _integration_services() -> ModuleType:
    """``tests/integration/conftest.py`` as a plain module (fixtures there are not visible
    from this directory); the running cluster itself is shared through the pytest config."""
    name = "custody_integration_services"
    if name not in sys.modules:
        path = Path(__file__).resolve().parents[1] / "integration" / "conftest.py"
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture
def local_store(tmp_path: Path) -> Iterator[ObjectStore]:
    yield LocalStore.create(tmp_path / "store")


@pytest.fixture
def s3_rgw_store(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[ObjectStore]:
    services = _integration_services()
    rgw = services.session_rgw(request.config)
    bucket = services.lock_bucket(request.config, rgw)
    services.use_credentials(monkeypatch, rgw.access_key, rgw.secret_key)
    from storage.url import open_store

    yield open_store(f"s3://{bucket}/contract?endpoint_url={rgw.endpoint}&region=us-east-1")


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest) -> ObjectStore:
    return request.getfixturevalue(request.param)  # type: ignore[no-any-return]


@pytest.fixture(params=CAPABLE["Staging"])
def staging_store(request: pytest.FixtureRequest) -> ObjectStore:
    return request.getfixturevalue(request.param)  # type: ignore[no-any-return]


@pytest.fixture(params=CAPABLE["UploadPlanning"])
def planning_store(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> ObjectStore:
    """The backend with parts small enough that a 12 MiB object is a multipart upload."""
    assert request.param == "s3_rgw_store"
    services = _integration_services()
    rgw = services.session_rgw(request.config)
    bucket = services.lock_bucket(request.config, rgw)
    services.use_credentials(monkeypatch, rgw.access_key, rgw.secret_key)
    from storage.url import open_store

    return open_store(
        f"s3://{bucket}/contract?endpoint_url={rgw.endpoint}&region=us-east-1"
        "&multipart_threshold_mib=6&part_size_mib=5"
    )


@pytest.fixture(params=CAPABLE["LocalPaths"])
def local_paths_store(request: pytest.FixtureRequest) -> ObjectStore:
    return request.getfixturevalue(request.param)  # type: ignore[no-any-return]


@pytest.fixture(params=CAPABLE["BucketSetup"])
def setup_store(request: pytest.FixtureRequest) -> ObjectStore:
    return request.getfixturevalue(request.param)  # type: ignore[no-any-return]


@pytest.fixture
def prefix() -> str:
    return f"contract/{uuid.uuid4().hex[:12]}/"
