"""Where ``ledger publish s3://...`` sends the log: the target URL's endpoint and region, else
the evidence store's (credentials always from boto3's standard chain)."""

from __future__ import annotations

import pytest

from custody.anchors.public_s3 import open_s3_log
from custody.errors import BadInput

STORE = "s3://evidence/cpd?endpoint_url=http://127.0.0.1:7480&region=eu-west-3"


def test_the_evidence_stores_endpoint_and_region_are_used_when_the_target_names_none() -> None:
    log = open_s3_log("s3://public-log/custody", STORE)
    assert (log.site.bucket, log.site.prefix) == ("public-log", "custody/")
    assert (log.site.endpoint_url, log.site.region) == ("http://127.0.0.1:7480", "eu-west-3")
    assert log.where("checkpoint") == "s3://public-log/custody/checkpoint"


def test_the_targets_own_endpoint_wins_and_a_local_store_lends_nothing() -> None:
    own = open_s3_log("s3://public-log/custody?endpoint_url=https://rgw.example.org&region=us-east-1", STORE)
    assert (own.site.endpoint_url, own.site.region) == ("https://rgw.example.org", "us-east-1")
    local = open_s3_log("s3://public-log/custody", "file:///var/lib/custody/store")
    assert (local.site.endpoint_url, local.site.region) == (None, None)


@pytest.mark.parametrize("url, words", [
    ("s3://public-log", "give a prefix"),
    ("s3://public-log/", "give a prefix"),
    ("s3://AKIA:secret@public-log/custody", "credentials do not belong"),
    ("s3://public-log/custody?colour=blue", "unknown S3 store URL parameter"),
])
def test_a_bad_target_is_refused_before_anything_is_sent(url: str, words: str) -> None:
    with pytest.raises(BadInput) as refused:
        open_s3_log(url, STORE)
    assert words in str(refused.value) and "secret" not in str(refused.value)
