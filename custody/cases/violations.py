"""Categories of alleged violations (data, in TOML), and checking an incident's tags against them.

The shipped list (``violations.toml``) is overridden and extended by the agency's configuration
(``[violations.categories.NAME]``), as retention categories are. Incidents carry category names
in their ``violation_categories`` field; free-text citations stay in ``violations``. Public
releases (``custody.publish``) count by these categories and state the taxonomy they used.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

from custody.errors import BadInput, ConfigError

NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,47}$")


@dataclass(frozen=True)
class ViolationCategory:
    name: str
    title: str
    citations: tuple[str, ...]
    generic: bool = False
    retired: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "citations": list(self.citations),
            "generic": self.generic,
            "retired": self.retired,
        }


def _category(name: str, spec: Mapping[str, Any]) -> ViolationCategory:
    where = f"violation category {name!r}"
    if not NAME.match(name):
        raise ConfigError(f"{where}: use 1-48 lower-case letters, digits and '-'")
    title = spec.get("title")
    citations = spec.get("citations")
    if not isinstance(title, str) or not title.strip():
        raise ConfigError(f"{where}: give a title")
    if not isinstance(citations, list) or not citations or not all(isinstance(c, str) and c.strip() for c in citations):
        raise ConfigError(f"{where}: give citations, a list of at least one non-empty string")
    generic, retired = spec.get("generic", False), spec.get("retired", False)
    if not isinstance(generic, bool) or not isinstance(retired, bool):
        raise ConfigError(f"{where}: generic and retired are true or false")
    return ViolationCategory(name, title.strip(), tuple(c.strip() for c in citations), generic, retired)


def shipped_taxonomy() -> dict[str, dict[str, Any]]:
    text = resources.files("custody.cases").joinpath("violations.toml").read_text(encoding="utf-8")
    return {name: dict(spec) for name, spec in tomllib.loads(text)["categories"].items()}


def load_taxonomy(config: Mapping[str, Any]) -> dict[str, ViolationCategory]:
    """The shipped categories, overridden and extended by ``config['violations']['categories']``,
    in name order."""
    specs = shipped_taxonomy()
    agency = config.get("violations", {}).get("categories", {})
    if not isinstance(agency, Mapping):
        raise ConfigError("[violations.categories] in the configuration must be a table of tables")
    for name, spec in agency.items():
        if not isinstance(spec, Mapping):
            raise ConfigError(f"[violations.categories.{name}] must be a table")
        specs[name] = {**specs.get(name, {}), **spec}
    return {name: _category(name, specs[name]) for name in sorted(specs)}


def taxonomy_from_dicts(records: Iterable[Mapping[str, Any]]) -> dict[str, ViolationCategory]:
    """A taxonomy as a release states it (``ViolationCategory.as_dict`` records)."""
    taxonomy: dict[str, ViolationCategory] = {}
    for record in records:
        name = record.get("name")
        if not isinstance(name, str):
            raise BadInput("a taxonomy record has no name")
        try:
            taxonomy[name] = _category(name, record)
        except ConfigError as exc:
            raise BadInput(str(exc)) from exc
    return taxonomy


def check_categories(names: Iterable[str], taxonomy: Mapping[str, ViolationCategory]) -> list[str]:
    """The given category names, each checked to be a current category (``BadInput`` listing
    the known ones otherwise), without repeats, in the order given."""
    known = [name for name, category in taxonomy.items() if not category.retired]
    checked: list[str] = []
    for name in names:
        if name not in known:
            raise BadInput(
                f"--violation: unknown category {name!r}; known categories: {', '.join(known)} "
                "(a free-text citation goes in --citation)"
            )
        if name not in checked:
            checked.append(name)
    return checked
