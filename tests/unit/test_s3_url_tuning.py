"""Upload tuning through the store URL (no server needed)."""

from __future__ import annotations

import pytest

from storage.errors import StorageError
from storage.s3 import S3Store

BASE = "s3://evidence?endpoint_url=http://127.0.0.1:9&region=us-east-1"


def test_tuning_parameters_reach_the_store() -> None:
    store = S3Store.from_url(BASE + "&multipart_threshold_mib=8&part_size_mib=6&workers=2&flexible_checksums=false")
    assert store.multipart_threshold == 8 << 20
    assert store.part_size == 6 << 20
    assert store.max_workers == 2
    assert store.flexible_checksums is False


@pytest.mark.parametrize("bad", ["part_size_mib=4", "workers=0", "multipart_threshold_mib=x", "flexible_checksums=maybe"])
def test_bad_tuning_is_refused_by_name(bad: str) -> None:
    name = bad.split("=")[0]
    with pytest.raises(StorageError, match=name):
        S3Store.from_url(BASE + "&" + bad)
