"""What a release counts and how it protects small counts: read from the agency's
configuration (``[publish]``), stated in each release and its ledger event, and read back from
them when a release is recomputed."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from custody.cases.violations import ViolationCategory, load_taxonomy, taxonomy_from_dicts
from custody.errors import BadInput, ConfigError

PERIODS = ("month", "quarter", "year")
LOCATION_LEVELS = ("none", "district")
DEFAULT_AGENCIES: dict[str, tuple[str, ...]] = {
    "ICE": ("ice", "u.s. immigration and customs enforcement", "immigration and customs enforcement", "ero", "hsi"),
    "CBP": ("cbp", "u.s. customs and border protection", "customs and border protection", "border patrol", "usbp"),
}
DEFAULT_REFERRAL_TO = ("state's attorney", "states attorney", "state’s attorney", "sao")
EDITION = 4
"""What a release counts and how it suppresses: 1, each table suppressed on its own; 2, the
violations-by-agency table too, and suppression joint over all tables; 3, joint over all tables
of the month, quarter and year versions of the release, of which the release publishes its period's; 4, as 3, and with
the equations of the earlier releases of its period, a value an earlier release hid and that has not changed hidden
again (so that successive releases, read together, reveal nothing). A new release is of the
latest edition; a release's rules name its edition (none named: 1), so it is recomputed as made."""
_JOINT_PERIODS = (
    "cells (and totals) with counts from {min} to {max} are suppressed (primary); further cells are "
    "suppressed (complementary) until no suppressed value can be computed from the published cells and "
    "totals of all the tables of the month, quarter and year releases at the same checkpoint together, by "
    "any combination of their row, column and grand totals and of the sums of months into quarters and of "
    "quarters into years; the pattern is chosen once for the three periods and this release publishes its "
    "period's part of it, so releases of any periods at one checkpoint, read together, reveal no suppressed "
    "value; a total that several tables show (incidents per period, alleged violations per period) is one "
    "value, suppressed in all of them or in none; a count that other published counts show to be zero (the "
    "alleged violations of an agency with no incidents, a part of a total of 0) is never suppressed as a "
    "complement; zero is published"
)
"""The method of edition 3, which edition 4 extends."""

SUPPRESSION_METHODS = {
    1: "cells (and totals) with counts from {min} to {max} are suppressed (primary); further cells are "
       "suppressed (complementary) until no suppressed value can be computed from the published cells "
       "and totals of its table by any combination of row, column and grand totals; zero is published",
    2: "cells (and totals) with counts from {min} to {max} are suppressed (primary); further cells are "
       "suppressed (complementary) until no suppressed value can be computed from the published cells and "
       "totals of all the tables together by any combination of their row, column and grand totals; a total "
       "that several tables show (incidents per period, alleged violations per period) is one value, "
       "suppressed in all of them or in none; a count that other published counts show to be zero (the alleged "
       "violations of an agency with no incidents) is never suppressed as a complement; zero is published",
    3: _JOINT_PERIODS,
    4: _JOINT_PERIODS
    + "; and the earlier releases of this period are read with it: a value an "
      "earlier release suppressed that has not changed since is suppressed again, and no suppressed value of "
      "this release or of an earlier one can be computed from the published values of all of them together, a "
      "value that did not change between two releases being one value in both",
}
SUPPRESSION_SCOPES = {
    1: "each table on its own",
    2: "all tables of the release together",
    3: "all tables of the month, quarter and year releases together",
    4: "all tables of the month, quarter and year releases together, and the earlier releases of the period",
}
"""How far suppression reaches in each edition, as a release's page says it."""


@dataclass(frozen=True)
class PublishRules:
    """The parameters of a release. ``as_dict``/``from_dict`` round-trip exactly."""

    period: str
    suppress_min: int = 1
    suppress_max: int = 10
    location_level: str = "none"
    agencies: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: dict(DEFAULT_AGENCIES))
    referral_to: tuple[str, ...] = DEFAULT_REFERRAL_TO
    taxonomy: Mapping[str, ViolationCategory] = field(default_factory=dict)
    edition: int = EDITION

    def __post_init__(self) -> None:
        if self.edition not in SUPPRESSION_METHODS:
            raise BadInput(f"edition {self.edition} of the release format is not known to this custody "
                           f"(it knows {', '.join(map(str, SUPPRESSION_METHODS))}); use a newer custody")
        if self.period not in PERIODS:
            raise BadInput(f"--period: {self.period!r} is not one of {', '.join(PERIODS)}")
        if not 1 <= self.suppress_min <= self.suppress_max:
            raise ConfigError("[publish] suppress_min and suppress_max: give 1 <= suppress_min <= suppress_max")
        if self.location_level not in LOCATION_LEVELS:
            raise ConfigError(f"[publish] location_level: one of {', '.join(LOCATION_LEVELS)}")
        for name in self.agencies:
            if name in ("multiple", "other", "Total"):
                raise ConfigError(f"[publish.agencies] {name!r} is a reserved column name")

    @property
    def suppression(self) -> dict[str, Any]:
        return {
            "min": self.suppress_min,
            "max": self.suppress_max,
            "method": SUPPRESSION_METHODS[self.edition].format(min=self.suppress_min, max=self.suppress_max),
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            **({"edition": self.edition} if self.edition != 1 else {}),
            "period": self.period,
            "suppression": self.suppression,
            "location_level": self.location_level,
            "agencies": {name: list(aliases) for name, aliases in self.agencies.items()},
            "referral_to": list(self.referral_to),
            "taxonomy": [category.as_dict() for category in self.taxonomy.values()],
        }

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> PublishRules:
        """The rules a release states (``BadInput`` if they are malformed)."""
        try:
            suppression = record["suppression"]
            return cls(
                period=str(record["period"]),
                suppress_min=int(suppression["min"]),
                suppress_max=int(suppression["max"]),
                location_level=str(record["location_level"]),
                agencies={str(k): tuple(str(a) for a in v) for k, v in record["agencies"].items()},
                referral_to=tuple(str(r) for r in record["referral_to"]),
                taxonomy=taxonomy_from_dicts(record["taxonomy"]),
                edition=int(record.get("edition", 1)),
            )
        except (KeyError, TypeError, ValueError, AttributeError, ConfigError) as exc:
            raise BadInput(f"the release's rules are malformed: {exc}") from exc


def rules_from_config(config: Mapping[str, Any], period: str) -> PublishRules:
    """The agency's rules: ``[publish]`` (suppress_min, suppress_max, location_level,
    referral_to, [publish.agencies] NAME = [aliases]) and the violation taxonomy."""
    section = config.get("publish", {})
    if not isinstance(section, Mapping):
        raise ConfigError("[publish] in the configuration must be a table")
    agencies = section.get("agencies")
    if agencies is None:
        agency_map: dict[str, tuple[str, ...]] = dict(DEFAULT_AGENCIES)
    elif isinstance(agencies, Mapping) and all(isinstance(v, list) for v in agencies.values()):
        agency_map = {str(k): tuple(str(a).casefold() for a in v) + (str(k).casefold(),) for k, v in agencies.items()}
    else:
        raise ConfigError("[publish.agencies]: NAME = [\"alias\", ...] for each agency column")
    referral_to = section.get("referral_to", list(DEFAULT_REFERRAL_TO))
    if not isinstance(referral_to, list) or not all(isinstance(r, str) and r for r in referral_to):
        raise ConfigError("[publish] referral_to: a list of names of the prosecutor's office, e.g. [\"State's Attorney\"]")
    for key in ("suppress_min", "suppress_max"):
        if key in section and (isinstance(section[key], bool) or not isinstance(section[key], int)):
            raise ConfigError(f"[publish] {key}: a whole number")
    return PublishRules(
        period=period,
        suppress_min=section.get("suppress_min", 1),
        suppress_max=section.get("suppress_max", 10),
        location_level=str(section.get("location_level", "none")),
        agencies=agency_map,
        referral_to=tuple(r.casefold() for r in referral_to),
        taxonomy=load_taxonomy(config),
    )
