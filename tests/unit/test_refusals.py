"""What refused: the kind a ``refused`` event records comes from the error itself."""

from __future__ import annotations

import pytest

from custody.errors import PolicyRefused, RefusedBy
from custody.ledger.events import CustodyEvent
from custody.refusals import describe, refused_by
from storage.errors import ObjectExists, RetentionViolation, StorageError, StorageUnavailable


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (PolicyRefused("no"), RefusedBy.POLICY),
        (PolicyRefused("no", refused_by=RefusedBy.TWO_PERSON), RefusedBy.TWO_PERSON),
        (RetentionViolation("refusing to delete evidence/x: it is under a legal hold"), RefusedBy.LOCK),
        (ObjectExists("evidence/x"), RefusedBy.LOCK),
        (StorageError("the S3 server refused"), RefusedBy.STORE),
        (StorageUnavailable("down"), RefusedBy.STORE),
    ],
)
def test_the_kind_is_the_errors_own(error: Exception, kind: RefusedBy) -> None:
    assert refused_by(error) is kind


def test_a_kind_outside_the_set_is_refused_at_once() -> None:
    with pytest.raises(ValueError):
        PolicyRefused("no", refused_by="whim")  # type: ignore[arg-type]


def test_one_line_names_kind_command_subject_target_actor_and_why() -> None:
    event = CustodyEvent(
        7, "2026-12-07T05:00:00Z", "sup-2", "supervisor", "refused", {"evidence": "ab" * 32},
        {"command": "custody approve", "refused_by": "lock", "reason": "it is under legal hold SAO-9",
         "target": {"attachment": "packets/x"}}, "", "", "",
    )
    assert describe(event) == (
        f"refused (lock): custody approve evidence {'ab' * 8}… attachment packets/x by sup-2: it is under legal hold SAO-9"
    )
