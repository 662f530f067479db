"""Roles as data: which ledger actions each role may record, and who may approve what.

The shipped table (``roles.toml``) is overridden and extended by ``[actors.roles.NAME]`` and
``[actors.approvals]`` in config.toml, the way retention categories are.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

from custody.errors import ConfigError

ALWAYS_ALLOWED = frozenset({"refused"})
"""Actions recorded for anyone: a refused attempt is recorded whoever made it."""


@dataclass(frozen=True)
class RolePolicy:
    """Every role's permitted actions, and which roles may approve each kind of request."""

    roles: Mapping[str, frozenset[str]]
    approvals: Mapping[str, frozenset[str]]

    def allows(self, role: str, action: str) -> bool:
        return action in ALWAYS_ALLOWED or action in self.roles.get(role, frozenset())

    def may_approve(self, role: str, kind: str) -> bool:
        return role in self.approvals.get(kind, frozenset())

    def as_dict(self) -> dict[str, Any]:
        return {
            "roles": {name: sorted(actions) for name, actions in sorted(self.roles.items())},
            "approvals": {kind: sorted(roles) for kind, roles in sorted(self.approvals.items())},
        }


def _names(value: Any, where: str) -> frozenset[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
        raise ConfigError(f"{where} must be a list of names")
    return frozenset(value)


def load_roles(config: Mapping[str, Any]) -> RolePolicy:
    """The shipped roles, overridden and extended by ``config['actors']``."""
    shipped = tomllib.loads(resources.files("custody.actors").joinpath("roles.toml").read_text(encoding="utf-8"))
    agency = config.get("actors", {})
    if not isinstance(agency, Mapping):
        raise ConfigError("config.toml: [actors] must be a table")
    roles: dict[str, frozenset[str]] = {}
    for name, spec in {**shipped["roles"], **agency.get("roles", {})}.items():
        if not isinstance(spec, Mapping):
            raise ConfigError(f"config.toml: [actors.roles.{name}] must be a table")
        roles[name] = _names(spec.get("actions", []), f"[actors.roles.{name}] actions")
    approvals = {
        kind: _names(value, f"[actors.approvals] {kind}")
        for kind, value in {**shipped["approvals"], **agency.get("approvals", {})}.items()
    }
    if "admin" not in roles or "actor-enrolled" not in roles["admin"]:
        raise ConfigError("config.toml: the admin role must keep the action actor-enrolled")
    return RolePolicy(roles, approvals)


def shipped_roles() -> RolePolicy:
    """The roles shipped with custody (``roles.toml``), with no agency override."""
    return load_roles({})
