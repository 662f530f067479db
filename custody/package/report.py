"""``report.html``: one self-contained page for people (inline CSS, images as ``data:`` URIs,
no script, nothing fetched), rendered from ``templates/report.html.j2`` by Jinja2 with
autoescaping on: every value from the ledger or the store reaches the page escaped."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import jinja2
import markupsafe

from custody import TOOL
from custody.media.coverage import Coverage, Recording, chart, compute
from custody.media.credentials import credentials_line
from custody.media.recorded import SOURCE_WORDS, parse_time
from custody.package.lockcheck import lock_tested
from custody.package.model import ExportContext, human_size
from custody.refusals import REFUSED, describe

if TYPE_CHECKING:
    from custody.ledger.database import CustodyEvent

FIELD_LABELS = {
    "occurred_at": "Occurred at", "location": "Location", "agencies": "Agencies",
    "supervisor_name": "Federal supervisor (name)", "supervisor_badge": "Federal supervisor (badge)",
    "credentials": "Credentials", "use_of_force": "Use of force", "detentions": "Detentions",
    "injuries": "Injuries", "ems_summoned": "EMS summoned", "aid_rendered": "Aid rendered",
    "violations": "Alleged violations", "report_number": "Report number", "note": "Note",
}


RECORDED_AT_SOURCES = SOURCE_WORDS
SOURCE_MARKS = {"container": "a", "mtime": "b", "sidecar": "c", "manifest": "d"}


def hex_lines(digest: str, group: int = 4, per_line: int = 8) -> list[str]:
    """A hex digest in groups of ``group`` characters that can be read aloud, ``per_line``
    groups to a line: SHA-256 and BLAKE3 on two lines, SHA-512 on four."""
    groups = [digest[i:i + group] for i in range(0, len(digest), group)]
    return [" ".join(groups[i:i + per_line]) for i in range(0, len(groups), per_line)]


def css_string(value: Any) -> markupsafe.Markup:
    """``value`` as the inside of a double-quoted CSS string: every character other than
    letters, digits, space, ``.``, ``-`` and ``_`` as a CSS escape, so that nothing in it can
    end the string, the rule or the style element."""
    out = []
    for char in str(value):
        if char.isascii() and (char.isalnum() or char in " .-_"):
            out.append(char)
        else:
            out.append(f"\\{ord(char):06x}")
    return markupsafe.Markup("".join(out))


@lru_cache(maxsize=1)
def templates() -> jinja2.Environment:
    """The package's templates, HTML-escaped by default, failing on any undefined name."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("custody.package", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["hex_lines"] = hex_lines
    env.filters["css_string"] = css_string
    return env


def shown(value: Any) -> str:
    """A field's value for people: yes/no, lists joined, a dash for nothing."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if value is None:
        return "—"
    return str(value)


def event_summary(event: CustodyEvent) -> str:
    """One line saying what a custody event records, for people."""
    d = event.details
    action = event.action
    if action == "ingested":
        source = d.get("source") or {}
        return (f"preserved {source.get('name')} ({d.get('size')} bytes) from {source.get('host')}:{source.get('path')}"
                + declared_summary(d.get("declared")))
    if action == "acquired":
        source = d.get("source") or {}
        return f"the same bytes acquired again from {source.get('host')}:{source.get('path')}" + declared_summary(d.get("declared"))
    if action == "sidecar-linked":
        given = d.get("sidecar")
        sidecar: dict[str, Any] = given if isinstance(given, dict) else {}
        how = f"by the rule {d.get('rule')}" if d.get("rule") else f"by {d.get('how')}"
        return (f"sidecar {sidecar.get('name')} ({sidecar.get('size')} bytes, BLAKE3 {str(sidecar.get('blake3'))[:16]}…) "
                f"linked to this recording {how}")
    if action == "linked":
        parts = [f"camera {d['camera']}" if d.get("camera") else "", f"officer {d['officer']}" if d.get("officer") else ""]
        return "linked to the incident " + ", ".join(p for p in parts if p)
    if action == "incident-created":
        return "incident recorded"
    if action == "incident-amended":
        changes = "; ".join(f"{k}: {v.get('from')} → {v.get('to')}" for k, v in sorted((d.get("changes") or {}).items()))
        return f"amended ({changes}); reason: {d.get('reason')}"
    if action == "incident-referred":
        return f"referred to {d.get('to')} (reference {d.get('reference')}){', felony' if d.get('felony') else ''}"
    if action == "retention-extended":
        return f"retention {d.get('category')} until {d.get('until')}: {d.get('reason')}"
    if action == "hold-inherited":
        return (f"legal hold {d.get('hold')} ({d.get('authority')}): {d.get('reason')}; inherited from incident "
                f"{d.get('incident')} (event {d.get('inherits')})")
    if action in ("hold-placed", "hold-released"):
        return f"legal hold {d.get('hold')} ({d.get('authority')}): {d.get('reason')}"
    if action == "verified":
        return f"verified: {'OK' if d.get('ok') else 'FINDINGS'} ({d.get('what', d.get('algorithm', ''))})"
    if action == REFUSED:
        return describe(event)
    if action == "exported":
        return f"exported to {d.get('recipient')} as {d.get('file')}"
    scalars = ", ".join(f"{k}={v}" for k, v in sorted(d.items()) if isinstance(v, (str, int, bool)))
    return scalars[:200]


def declared_summary(declared: Any) -> str:
    """What a manifest of the previous system said of the file (custody.evidence.expected), as
    the end of an ingest line; empty without one."""
    if not isinstance(declared, dict):
        return ""
    given = declared.get("manifest")
    name = given.get("name") if isinstance(given, dict) else None
    result = declared.get("result")
    if result in ("match", "mismatch"):
        return (f"; the previous system's {str(declared.get('algorithm')).upper()} ({name} line {declared.get('line')}): "
                f"{'MATCH' if result == 'match' else 'MISMATCH, declared ' + str(declared.get('value'))}")
    if result == "not-listed":
        return f"; not listed in the previous system's manifest {name}"
    if result in ("manifest", "manifest-changed"):
        return f"; the previous system's manifest ({declared.get('entries')} entries, {declared.get('absent_count')} absent)"
    return ""


def _incident_rows(state: Mapping[str, Any]) -> list[tuple[str, str]]:
    fields = state.get("fields") or {}
    order = list(FIELD_LABELS)
    ranked = sorted(fields.items(), key=lambda kv: (order.index(kv[0]) if kv[0] in order else len(order), kv[0]))
    rows = [(FIELD_LABELS.get(name, name), shown(value)) for name, value in ranked]
    for referral in state.get("referrals") or []:
        rows.append(("Referred", f"to {referral.get('to')} (reference {referral.get('reference')})"
                                 f"{', felony' if referral.get('felony') else ''} on {referral.get('time')}"))
    if state.get("flagged_because"):
        rows.append(("Flagged encounter", ", ".join(state["flagged_because"])))
    return rows


def _signed_text(context: ExportContext, seq: int, signed: set[int]) -> str:
    if seq in context.signature_problems:
        return f"SIGNATURE PROBLEM: {context.signature_problems[seq]}"
    if seq in signed:
        return "signed with the enrolled person's key"
    return "NOT signed by an enrolled person"


def _who_acted(context: ExportContext, signed: set[int]) -> str:
    unsigned = [e.seq for e in context.events if e.seq not in signed]
    text = f"{len(signed)} of {len(context.events)} event(s) signed by the enrolled person who caused them"
    if unsigned:
        listed = ", ".join(str(seq) for seq in unsigned[:50]) + (" ..." if len(unsigned) > 50 else "")
        text += f"; {len(unsigned)} NOT signed by an enrolled person (events {listed})"
    if context.signature_problems:
        text += f"; {len(context.signature_problems)} with a signature problem (events " \
                f"{', '.join(str(seq) for seq in sorted(context.signature_problems))})"
    return text


def package_coverage(context: ExportContext) -> Coverage:
    """The coverage (``custody.media.coverage``) of the recordings in the package."""
    recordings = []
    for item in context.items:
        if item.sidecar_of:
            continue
        try:
            start = parse_time(item.recorded_at) if item.recorded_at else None
        except ValueError:
            start = None
        timed = item.media_kind in ("video", "audio") and isinstance(item.duration_us, int) and item.duration_us > 0
        recordings.append(Recording(item.blake3, item.file.split("/", 1)[1], item.officer, item.camera, start,
                                    item.duration_us if timed else None, item.recorded_at_source))
    occurred = (context.state.get("fields") or {}).get("occurred_at")
    try:
        moment = parse_time(occurred) if isinstance(occurred, str) else None
    except ValueError:
        moment = None
    return compute(context.incident, recordings, occurred_at=moment)


def render_report(context: ExportContext) -> str:
    """``report.html`` of the package being written (its contact sheets are read from the bag):
    the incident, the files, the custody timeline and the contact sheets; prints on letter or A4."""
    timeline = []
    signed = {seq for seq, _, _ in context.signed}
    for event in context.events:
        subject = event.subject.get("evidence")
        about = context.name_of(subject).split("/", 1)[-1] if subject else f"incident {event.subject.get('incident')}"
        timeline.append({"seq": event.seq, "time": event.time, "who": f"{event.actor} ({event.role})",
                         "signed": _signed_text(context, event.seq, signed),
                         "action": event.action, "about": about, "what": event_summary(event)})
    sheets = [
        {"file": item.file.split("/", 1)[1],
         "png": base64.b64encode((context.bag_root / item.contact_sheet).read_bytes()).decode("ascii")}
        for item in context.items if item.contact_sheet
    ]
    checkpoint = context.checkpoint
    summary = [
        ("Package identifier", context.package_id),
        ("Prepared", f"{context.created_text} by {context.workspace.settings.actor} with {TOOL}"),
        ("Recipient", context.recipient),
        ("Source organisation", context.organization),
        ("Ledger key", context.verifier.to_text()),
        ("Checkpoint", f"{checkpoint.origin}, {checkpoint.size} events, root (SHA-256) {checkpoint.root.hex()}"),
        ("Who acted", _who_acted(context, signed)),
    ]
    coverage = package_coverage(context)
    worm = context.workspace.store.capabilities.worm
    return templates().get_template("report.html.j2").render(
        incident=context.incident,
        package_id=context.package_id,
        created=context.created_text,
        checkpoint_size=checkpoint.size,
        checkpoint_root=checkpoint.root.hex(),
        key=context.verifier.to_text(),
        prepared_seq=context.prepared_seq,
        previous_size=context.previous_size,
        sources=RECORDED_AT_SOURCES,
        marks=SOURCE_MARKS,
        coverage=coverage.as_dict(),
        chart=chart(coverage),
        credentials_line=credentials_line,
        worm=worm,
        lock_tested=lock_tested(context.workspace),
        with_packets=sum(1 for i in context.items if i.packets),
        items=[{**item.as_dict(), "name": item.file.split("/", 1)[1],
                "sidecar_of_name": context.name_of(item.sidecar_of).split("/", 1)[-1] if item.sidecar_of else None}
               for item in context.items],
        total=human_size(sum(i.size for i in context.items)),
        events=len(context.events),
        summary=summary,
        incident_rows=_incident_rows(context.state),
        disposed=context.disposed,
        timeline=timeline,
        sheets=sheets,
        shown=shown,
    )
