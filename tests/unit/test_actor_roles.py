"""Roles as data, and the details of a roles-set event."""

from __future__ import annotations

import pytest

from custody.actors.roles import RolePolicy, load_roles, policy_of, shipped_roles
from custody.errors import ConfigError


def test_the_admin_role_must_keep_enrolling_and_setting_roles() -> None:
    assert shipped_roles().allows("admin", "roles-set") and shipped_roles().allows("admin", "actor-enrolled")
    for actions in (["actor-enrolled"], ["roles-set"], []):
        with pytest.raises(ConfigError, match="the admin role must keep"):
            load_roles({"actors": {"roles": {"admin": {"actions": actions}}}})


def test_a_roles_set_details_give_back_the_same_roles_and_nothing_else_passes() -> None:
    policy = load_roles({"actors": {"roles": {"clerk": {"actions": ["ingested"]}}, "approvals": {"disposal": ["clerk"]}}})
    details = policy.details()
    assert policy_of(details) == policy and details["sha256"] == policy.digest()
    reordered = RolePolicy(dict(reversed(list(policy.roles.items()))), dict(policy.approvals))
    assert reordered.digest() == policy.digest(), "the digest is of the canonical JSON, whatever the order"
    assert load_roles({}).digest() != policy.digest()
    with pytest.raises(ValueError, match="sha256"):
        policy_of({**details, "sha256": "0" * 64})
    with pytest.raises(ValueError, match="not a table"):
        policy_of({**details, "roles": ["admin"]})
    with pytest.raises(ValueError, match="list of names"):
        policy_of({**details, "roles": {**details["roles"], "clerk": "ingested"}})
    weak = RolePolicy({**policy.roles, "admin": frozenset({"actor-enrolled"})}, policy.approvals)
    with pytest.raises(ValueError, match="must keep the action"):
        policy_of(weak.details())
