"""Roles as data: which ledger actions each role may record, and who may approve what.

The shipped table (``roles.toml``) is overridden and extended by ``[actors.roles.NAME]`` and
``[actors.approvals]`` in config.toml, the way retention categories are. That gives the roles
an administrator records in the ledger (a ``roles-set`` event, ``custody.actors.roles_log``);
events are judged by the roles recorded in the ledger at their position, never by today's
config.toml, except the events before a ledger's first ``roles-set``: a ledger made before roles
were recorded was operated with config.toml's roles, and is judged by them until then
(``roles_before_recorded``).
"""

from __future__ import annotations

import hashlib
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

from custody.errors import ConfigError
from custody.ledger.canonical import canonical_bytes

ALWAYS_ALLOWED = frozenset({"refused"})
"""Actions recorded for anyone: a refused attempt is recorded whoever made it."""
ROLES_SET = "roles-set"
"""The event recording the roles in force from then on (details: ``RolePolicy.details()``)."""
STATION = "station"
"""The role of unsigned events (a station without a person's key) once anyone is enrolled."""
ADMIN_KEEPS = ("actor-enrolled", ROLES_SET)
"""Actions the admin role always keeps: without them nobody could enroll or set roles again."""
SHIPPED_SOURCE = "the roles shipped with custody"
CONFIG_SOURCE = "config.toml's roles"
BEFORE_RECORDED = "recorded before roles were in the ledger"


@dataclass(frozen=True)
class RolePolicy:
    """Every role's permitted actions, and which roles may approve each kind of request."""

    roles: Mapping[str, frozenset[str]]
    approvals: Mapping[str, frozenset[str]]

    def allows(self, role: str, action: str) -> bool:
        return action in ALWAYS_ALLOWED or action in self.roles.get(role, frozenset())

    def station_allows(self, action: str) -> bool:
        """Whether an unsigned event may record ``action`` once anyone is enrolled: the
        ``station`` role's actions. Roles recorded before the station role existed (a
        ``roles-set`` with none) leave unsigned events to the rules that need a signature for
        enrollment, requests, approvals and irreversible acts only (``roster.NEEDS_ENROLLED``)."""
        return action in ALWAYS_ALLOWED or STATION not in self.roles or action in self.roles[STATION]

    def may_approve(self, role: str, kind: str) -> bool:
        return role in self.approvals.get(kind, frozenset())

    def as_dict(self) -> dict[str, Any]:
        return {
            "roles": {name: sorted(actions) for name, actions in sorted(self.roles.items())},
            "approvals": {kind: sorted(roles) for kind, roles in sorted(self.approvals.items())},
        }

    def digest(self) -> str:
        """SHA-256 (hex) of the canonical JSON of ``as_dict()``: the roles' identity."""
        return hashlib.sha256(canonical_bytes(self.as_dict())).hexdigest()

    def details(self) -> dict[str, Any]:
        """The details of a ``roles-set`` event recording these roles."""
        return {**self.as_dict(), "sha256": self.digest()}

    def lacks(self) -> str | None:
        """What makes these roles unusable (the admin role lost an action it must keep), or None."""
        kept = self.roles.get("admin", frozenset())
        missing = [action for action in ADMIN_KEEPS if action not in kept]
        if missing:
            return f"the admin role must keep the action(s) {', '.join(missing)}"
        return None


def policy_of(details: Mapping[str, Any], *, usable: bool = True) -> RolePolicy:
    """The roles a ``roles-set`` event records; ``ValueError`` saying what is wrong if its
    details are not a table of roles, its ``sha256`` is not theirs, or the admin role lacks
    what it must keep."""
    def table(name: str) -> Mapping[str, Any]:
        value = details.get(name)
        if not isinstance(value, Mapping):
            raise ValueError(f"its {name!r} is not a table")
        return value

    def names(value: Any, where: str) -> frozenset[str]:
        if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
            raise ValueError(f"{where} is not a list of names")
        return frozenset(value)

    policy = RolePolicy(
        {str(k): names(v, f"the role {k!r}") for k, v in table("roles").items()},
        {str(k): names(v, f"the approvals of {k!r}") for k, v in table("approvals").items()},
    )
    if details.get("sha256") != policy.digest():
        raise ValueError("its sha256 is not the SHA-256 of its roles")
    problem = policy.lacks() if usable else None
    if problem:
        raise ValueError(problem)
    return policy


BEFORE = "before"
"""In a ``roles-set`` recorded on a ledger with none that counts (``actor roles set`` on a ledger
made before roles were recorded): the roles that judged the events before it
(``roles_before_recorded`` then). The first ``roles-set`` of a ledger that has it gives the
roles of the events before it, in ``ledger verify`` and in every package, instead of
config.toml's or the shipped roles."""


def recorded_before(first: Mapping[str, Any] | None, seq: int) -> tuple[RolePolicy, str] | None:
    """The roles the first ``roles-set`` of a log (``first``: its details, at ``seq``) records
    as those before it, and where they come from; None if it records none. ``ValueError`` if
    what it records is not a table of roles."""
    if first is None or BEFORE not in first:
        return None
    value = first[BEFORE]
    if not isinstance(value, Mapping):
        raise ValueError(f"its {BEFORE!r} is not a table of roles")
    return policy_of(value, usable=False), f"the roles the roles-set event {seq} records as those before it"


def _names(value: Any, where: str) -> frozenset[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
        raise ConfigError(f"{where} must be a list of names")
    return frozenset(value)


def load_roles(config: Mapping[str, Any], *, usable: bool = True) -> RolePolicy:
    """The shipped roles, overridden and extended by ``config['actors']``; ``usable=False``
    does not require what the admin role must keep (``ADMIN_KEEPS``)."""
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
    policy = RolePolicy(roles, approvals)
    problem = policy.lacks() if usable else None
    if problem:
        raise ConfigError(f"config.toml: {problem} ([actors.roles.admin] actions)")
    return policy


def shipped_roles() -> RolePolicy:
    """The roles shipped with custody (``roles.toml``), with no agency override."""
    return load_roles({})


def roles_before_recorded(config: Mapping[str, Any]) -> tuple[RolePolicy, str]:
    """The roles that judge a ledger's events before its first ``roles-set``, and where they come
    from: config.toml's, what a ledger made before roles were recorded was operated with (not
    required to keep ``ADMIN_KEEPS``: an older config.toml may predate those actions); the
    shipped roles if config.toml's are not a table of roles."""
    try:
        return load_roles(config, usable=False), CONFIG_SOURCE
    except ConfigError as exc:
        return shipped_roles(), f"{SHIPPED_SOURCE} (config.toml's roles are not usable: {exc})"


def initial_roles(first: tuple[int, Mapping[str, Any]] | None, otherwise: tuple[RolePolicy, str]) -> tuple[RolePolicy, str]:
    """The roles that judge the events before a log's first ``roles-set`` (``first``: its
    position and details; None if it has none): those it records as the roles before it
    (``BEFORE``), else ``otherwise`` (for a ledger config.toml's, ``roles_before_recorded``; for
    a package the shipped roles, or its sealed roles.json if it carries no ``roles-set``). A
    ``BEFORE`` that is not a table of roles counts for nothing (the replay finds it)."""
    if first is not None:
        try:
            found = recorded_before(first[1], first[0])
        except ValueError:
            found = None
        if found is not None:
            return found
    return otherwise
