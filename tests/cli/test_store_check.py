from __future__ import annotations

from tests.conftest import Custody


def test_store_check_on_the_local_store_is_recorded_and_says_who_enforces(initialized: Custody) -> None:
    result = initialized.json("store", "check")
    assert result["enforced"] is True and result["worm"] == "program"
    assert [p["action"] for p in result["probes"]] == ["delete-version", "shorten-retention", "switch-to-governance"]
    [event] = initialized.json("log")
    assert event["action"] == "store-checked" and event["seq"] == result["seq"]
    assert event["details"]["enforced"] is True and len(event["details"]["probes"]) == 3
    human = initialized("store", "check")
    assert human.exit_code == 0 and "enforced by this program only" in human.stdout
    assert initialized("ledger", "verify").exit_code == 0
