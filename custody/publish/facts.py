"""The incidents as the ledger stood at one checkpoint, reduced to what a release may count.

Only events with a sequence number below the checkpoint's size are read: a later amendment or
referral cannot change a release computed at an earlier checkpoint. Amendments apply in ledger
order (the state at the checkpoint, as ``custody.cases.incidents`` replays it). What comes out
is an ``IncidentFacts`` per incident: a period date, the agency group, the categories and the
yes/no facts; no id, no name, no free text leaves this module.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, TYPE_CHECKING

from custody import times
from custody.publish.rules import PublishRules

if TYPE_CHECKING:
    from custody.ledger.database import Ledger

ACTIONS = ("incident-created", "incident-amended", "incident-referred")


@dataclass(frozen=True, slots=True)
class IncidentFacts:
    """What one incident contributes to a release."""

    day: date
    """The local date it occurred (its ``occurred_at`` in its own offset), else the UTC date it
    was recorded. Only its period is published."""
    agency: str
    categories: tuple[str, ...]
    use_of_force: bool
    detention: bool
    people_detained: int
    injury: bool
    ems_summoned: bool
    aid_rendered: bool
    supervisor_identified: bool
    credentials_refused: bool
    referred: bool
    felony: bool
    district: str | None


IncidentEvent = tuple[int, str, str, str, str]
"""One incident event as stored: (seq, time, action, incident, details as JSON text)."""


def read_events(ledger: Ledger, size: int, batch: int = 10000) -> Iterator[IncidentEvent]:
    """The incident events among the first ``size`` events of the ledger: every creation, then
    every amendment, then every referral, each kind in ledger order (one indexed scan each).

    Read through the database driver's own cursor (``custody.ledger.queries``): this is the one
    loop over hundreds of thousands of rows."""
    from custody.ledger import queries

    for seq, time, action, incident, details in queries.events_by_action_rows(ledger, ACTIONS, size, batch):
        yield seq, time, action, incident or "", details


@dataclass(slots=True)
class _Replay:
    created: int
    recorded: str
    fields: dict[str, Any]
    referrals: list[dict[str, Any]]


def replay(stream: Iterable[IncidentEvent]) -> dict[str, _Replay]:
    """Each incident's fields and referrals after the given events. Amendments apply in ledger
    order, each only to an incident created before it (as a replay in ledger order would)."""
    states: dict[str, _Replay] = {}
    loads = json.loads
    for seq, time, action, incident, details in stream:
        if action == "incident-created":
            if incident not in states:
                states[incident] = _Replay(seq, time, dict(loads(details).get("fields", {})), [])
            continue
        state = states.get(incident)
        if state is None or seq < state.created:
            continue
        record = loads(details)
        if action == "incident-amended":
            for name, change in record.get("changes", {}).items():
                if change.get("to") is None:
                    state.fields.pop(name, None)
                else:
                    state.fields[name] = change["to"]
        else:
            state.referrals.append(record)
    return states


def incident_day(fields: Mapping[str, Any], recorded: str) -> date:
    occurred = fields.get("occurred_at")
    if isinstance(occurred, str):
        try:
            return times.parse(occurred).date()
        except ValueError:
            pass
    return times.parse(recorded).date()


def agency_group(agencies: Any, rules: PublishRules) -> str:
    """The agency column: one configured agency, ``multiple`` for more than one, else ``other``."""
    names = [a.strip().casefold() for a in agencies if isinstance(a, str)] if isinstance(agencies, list) else []
    found = [group for group, aliases in rules.agencies.items() if any(name in aliases for name in names)]
    if len(found) == 1:
        return found[0]
    return "multiple" if found else "other"


def to_prosecutor(referral: Mapping[str, Any], rules: PublishRules) -> bool:
    to = str(referral.get("to", "")).casefold()
    return any(name in to for name in rules.referral_to)


def facts_of(state: _Replay, rules: PublishRules) -> IncidentFacts:
    fields = state.fields
    referrals = [r for r in state.referrals if to_prosecutor(r, rules)]
    detentions = fields.get("detentions")
    people = detentions if isinstance(detentions, int) and not isinstance(detentions, bool) and detentions > 0 else 0
    categories = fields.get("violation_categories")
    district = fields.get("district") if rules.location_level == "district" else None
    return IncidentFacts(
        day=incident_day(fields, state.recorded),
        agency=agency_group(fields.get("agencies"), rules),
        categories=tuple(dict.fromkeys(c for c in categories if isinstance(c, str))) if isinstance(categories, list) else (),
        use_of_force=bool(fields.get("use_of_force")),
        detention=people > 0,
        people_detained=people,
        injury=bool(fields.get("injuries")),
        ems_summoned=fields.get("ems_summoned") is True,
        aid_rendered=fields.get("aid_rendered") is True,
        supervisor_identified=bool(fields.get("supervisor_name") or fields.get("supervisor_badge")),
        credentials_refused=fields.get("credentials") == "refused",
        referred=bool(referrals),
        felony=any(r.get("felony") is True for r in referrals),
        district=district if isinstance(district, str) and district else None,
    )


def incidents_at(ledger: Ledger, size: int, rules: PublishRules) -> list[IncidentFacts]:
    """Every incident created among the first ``size`` events, as it stood then."""
    return [facts_of(state, rules) for state in replay(read_events(ledger, size)).values()]
