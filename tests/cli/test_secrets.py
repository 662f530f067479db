"""A database password is never printed: not from ``user:pass@``, not from ``?password=``."""

from __future__ import annotations

import pytest

from custody.settings import mask_secrets
from tests.conftest import Custody
from tests.integration.conftest import free_port


@pytest.mark.parametrize(
    ("given", "shown"),
    [
        ("postgresql+psycopg://clerk:hunter2@db:5432/custody", "postgresql+psycopg://clerk:***@db:5432/custody"),
        ("postgresql://db/custody?password=hunter2&sslmode=require", "postgresql://db/custody?password=***&sslmode=require"),
        ("postgresql://clerk@db/custody?sslmode=require&PassWord=hunter2", "postgresql://clerk@db/custody?sslmode=require&PassWord=***"),
        ("postgresql://db/c?sslpassword=hunter2", "postgresql://db/c?sslpassword=***"),
        ("host=db user=clerk password='hunter 2' dbname=custody", "host=db user=clerk password=*** dbname=custody"),
        ("s3://evidence?endpoint_url=https://k:hunter2@s3.example.org", "s3://evidence?endpoint_url=https://k:***@s3.example.org"),
        ("sqlite:////srv/custody/custody.db", "sqlite:////srv/custody/custody.db"),
        ("the ledger database postgresql://u:hunter2@h/d is down", "the ledger database postgresql://u:***@h/d is down"),
    ],
)
def test_mask_secrets(given: str, shown: str) -> None:
    assert mask_secrets(given) == shown
    assert "hunter" not in mask_secrets(given)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://clerk@127.0.0.1:{port}/custody?password=hunter2-query&connect_timeout=2",
        "postgresql://clerk:hunter2-userinfo@127.0.0.1:{port}/custody?connect_timeout=2",
        "postgresql://127.0.0.1:{port}/custody?user=clerk&password=hunter2-query",
    ],
)
def test_an_unreachable_database_error_never_shows_the_password(custody: Custody, url: str) -> None:
    db = url.format(port=free_port())
    for args in (["init"], ["log"], ["db", "status"], ["ingest", "/proc/version"]):
        result = custody(*args, env={"CUSTODY_DB": db})
        assert result.exit_code == 5, (args, result.output)
        assert "hunter2" not in result.output, (args, result.output)
        assert "***" in result.stderr, (args, result.stderr)
