"""Writing a release and recording it.

A release directory holds (names fixed here; ``custody.publish.verify`` reads them)::

    <table>.csv  data.json  datapackage.json  index.html  checkpoint.txt  README.txt
        the counts, their description, the page, and the signed checkpoint they were computed at;
        each named with its SHA-256 in the ``published`` event
    published-event.json         that event (its canonical bytes are its Merkle leaf)
    published-event.tlog-proof   C2SP tlog-proof of the event in a later signed checkpoint
    consistency-proof.txt        RFC 6962 consistency proof from checkpoint.txt's tree to the proof's
    verifier.key                 the ledger's verifier key

The files are written to a temporary directory next to ``--out`` and moved into place only after
the event is recorded and proved, so a failed release leaves nothing that looks like one.
"""

from __future__ import annotations

import base64
import gc
import json
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from custody.errors import BadInput
from custody.publish.facts import incidents_at
from custody.publish.render import FORMAT, chart, datapackage, render_html, sha256, table_csv
from custody.publish.rules import SUPPRESSION_SCOPES, PublishRules, rules_from_config
from custody.publish.state import DIGEST, Published, digest, load_state, state_bytes, write_state
from custody.publish.stats import TOTAL, History, Table, compute_release, published_cells
from custody.publish.witnessed import COSIGNATURES, cosignature_lines
from custody.workspace import Workspace

if TYPE_CHECKING:
    from custody.ledger.database import CustodyEvent, Ledger

ACTION = "published"
EVENT = "published-event.json"
PROOF = "published-event.tlog-proof"
CONSISTENCY = "consistency-proof.txt"
VERIFIER_KEY = "verifier.key"
CHECKPOINT = "checkpoint.txt"
ENVELOPE = (EVENT, PROOF, CONSISTENCY, VERIFIER_KEY, COSIGNATURES)
TITLE = "Documented encounters with federal immigration agents"

README = """This directory is a public data release of custody (format {format}).

Counts of documented incidents by {period}, computed from the custody ledger at checkpoint {size}.
No personal data, no incident ids, no free text and no exact dates are in it; counts from
{low} to {high}, and any count they could be worked out from, are suppressed (data.json says which).

Files: one CSV per table, described by datapackage.json (Frictionless Data); data.json (every
table, the rules and the suppression); index.html (tables and charts); checkpoint.txt (the
signed ledger checkpoint the counts were computed at). published-event.json is the ledger event
that names every one of those files with its SHA-256; published-event.tlog-proof proves that
event is in the ledger; consistency-proof.txt proves checkpoint.txt's tree is part of the tree
the proof is against; verifier.key is the key that signed both checkpoints. Where the agency has
witnesses, cosignatures.txt holds their cosignatures on the checkpoint the proof is against
(written after the event, so the event does not name it).

Check it: custody publish verify DIR [--key VERIFIER_KEY] [--trust-witness WITNESS_KEY ... --witness-quorum N]
Recompute it from the ledger: custody publish verify DIR --recompute
Check the files by hand: sha256sum each file and compare with "files" in published-event.json.
"""


def checkpoint_row(ledger: Ledger, as_of: str) -> Mapping[str, Any]:
    rows = ledger.checkpoint_rows()
    if not rows:
        raise BadInput("the ledger has no signed checkpoint yet; record something first (or use --as-of latest)")
    if as_of == "latest":
        return rows[-1]
    try:
        size = int(as_of)
    except ValueError:
        raise BadInput(f"--as-of: {as_of!r} is neither a checkpoint size nor 'latest'") from None
    for row in rows:
        if row["size"] == size:
            return row
    sizes = ", ".join(str(r["size"]) for r in rows[-10:])
    raise BadInput(f"--as-of: no signed checkpoint of size {size}; the latest are {sizes} (see 'custody log')")


Made = dict[int, tuple[Published, History]]
"""Earlier releases (their published values and what they hand on), by their event's sequence
number: made again from the ledger, or read from their state files."""


def compute_at(ledger: Ledger, size: int, rules: PublishRules, before: int | None = None,
               made: Made | None = None, home: Path | None = None) -> list[Table]:
    """The release's tables at checkpoint ``size``; from edition 4 on, with what the earlier
    releases hand on (the latest ``published`` event of each period before event ``before``,
    each made again from the ledger in turn; ``made`` keeps those already made). With ``home``,
    an earlier release whose state file there matches its event is read, not made again
    (``custody.publish.state``)."""
    return _release_at(ledger, size, rules, before, {} if made is None else made, 0, home)[0]


def made_again(ledger: Ledger, event: CustodyEvent, made: Made, home: Path | None = None) -> tuple[Published, History]:
    """The release of ``event`` made again from the ledger, or with ``home`` read from its state
    file where that matches the event (once: ``made`` keeps it)."""
    if event.seq not in made:
        kept = load_state(home, event) if home is not None else None
        if kept is None:
            tables, history = _release_at(ledger, event.details["checkpoint"]["size"],
                                          PublishRules.from_dict(event.details["rules"]), event.seq, made, event.seq,
                                          home)
            kept = published_cells(tables), history
        made[event.seq] = kept
    return made[event.seq]


def earlier_releases(ledger: Ledger, before: int | None) -> list[CustodyEvent]:
    """The latest ``published`` event of each period before event ``before`` (all, if None)."""
    latest: dict[str, CustodyEvent] = {}
    for event in ledger.events(actions=(ACTION,)):
        if before is not None and event.seq >= before:
            break
        latest[str(event.details.get("rules", {}).get("period"))] = event
    return sorted(latest.values(), key=lambda e: e.seq)


def _release_at(ledger: Ledger, size: int, rules: PublishRules, before: int | None, made: Made,
                number: int, home: Path | None = None) -> tuple[list[Table], History]:
    earlier = ([made_again(ledger, event, made, home)[1] for event in earlier_releases(ledger, before)]
               if rules.edition >= 4 else [])
    paused = gc.isenabled()
    gc.disable()
    try:
        return compute_release(incidents_at(ledger, size, rules), rules, earlier, number)
    finally:
        if paused:
            gc.enable()


@dataclass
class Revision:
    previous: dict[str, Any]
    changes: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"previous": self.previous, "changes": self.changes}


def previous_release(ledger: Ledger, period: str, before: int | None = None) -> CustodyEvent | None:
    """The latest ``published`` event for the same kind of period (before event ``before``), if any."""
    latest = None
    for event in ledger.events(actions=(ACTION,)):
        if before is not None and event.seq >= before:
            break
        if event.details.get("rules", {}).get("period") == period:
            latest = event
    return latest


def revision_against(ledger: Ledger, event: CustodyEvent, tables: Sequence[Table], url: str | None,
                     made: Made | None = None, home: Path | None = None) -> Revision:
    """What changed in published values of periods both releases show (not the Total row). A
    value suppressed in either release is stated as None there: the statement says that a
    suppressed value became published (or the reverse), never what it was."""
    rules = PublishRules.from_dict(event.details["rules"])
    before = made_again(ledger, event, {} if made is None else made, home)[0]
    now = published_cells(tables)
    changes = [
        {"table": key[0], "period": key[1], "column": key[2], "before": before[key], "after": value}
        for key, value in now.items()
        if key in before and key[1] != TOTAL and before[key] != value
    ]
    previous = {
        "event": event.seq,
        "checkpoint": event.details["checkpoint"]["size"],
        "datapackage_sha256": event.details.get("files", {}).get("datapackage.json"),
        "url": url.format(event=event.seq) if url else None,
        "edition": rules.edition,
    }
    return Revision(previous, changes)


def suppression_summary(tables: Sequence[Table]) -> list[dict[str, Any]]:
    """Per table: how many of its values are suppressed as primary and as complementary, and
    which other tables show the same totals (a suppressed shared total is counted in each)."""
    return [
        {"table": t.name, "title": t.title,
         "primary": sum(1 for v in t.suppressed.values() if v == "primary"),
         "complementary": sum(1 for v in t.suppressed.values() if v == "complementary"),
         **({"totals_shared_with": shared} if (shared := [o.name for o in tables
                                                           if o is not t and t.measure and o.measure == t.measure])
            else {})}
        for t in tables
    ]


def release_files(
    tables: Sequence[Table], rules: PublishRules, checkpoint: Mapping[str, Any], revision: Revision | None
) -> dict[str, bytes]:
    """Every file of the release that its event names."""
    summary = suppression_summary(tables)
    point = {"size": checkpoint["size"], "root": checkpoint["root"]}
    data = {
        "format": FORMAT,
        "title": TITLE,
        "checkpoint": point,
        "period": rules.period,
        "rules": rules.as_dict(),
        "suppression": {"rule": rules.suppression, "tables": summary},
        "tables": [t.as_dict() for t in tables],
        "revision": revision.as_dict() if revision else None,
    }
    files: dict[str, bytes] = {f"{t.name}.csv": table_csv(t) for t in tables}
    files["data.json"] = (json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")
    files["datapackage.json"] = datapackage(files, tables, TITLE, point)
    named = {t.name: t for t in tables}
    charts = [chart(named["incidents_by_agency"], "Documented incidents per " + rules.period),
              chart(named["violations_by_category"], "Alleged violations per " + rules.period)]
    if "violations_by_agency" in named:
        by_agency = named["violations_by_agency"]
        charts.append(chart(by_agency, "Alleged violations per " + rules.period + ", by agency", by_agency.columns))
    charts.append(chart(named["referrals"], "Referrals to the State's Attorney per " + rules.period))
    files["index.html"] = render_html({
        "title": TITLE, "period": rules.period, "checkpoint": point, "rules": rules.as_dict(), "tables": tables,
        "charts": charts, "suppression": summary, "taxonomy": rules.as_dict()["taxonomy"], "total": TOTAL,
        "revision": revision.as_dict() if revision else None, "scopes": SUPPRESSION_SCOPES,
    })
    files[CHECKPOINT] = str(checkpoint["note"]).encode("utf-8")
    files["README.txt"] = README.format(format=FORMAT, period=rules.period, size=checkpoint["size"],
                                        low=rules.suppress_min, high=rules.suppress_max).encode("utf-8")
    return files


@dataclass
class ReleaseReport:
    out: Path
    event: int
    checkpoint: int
    proof_checkpoint: int
    period: str
    files: dict[str, str]
    suppressed: list[dict[str, Any]]
    revision: dict[str, Any] | None

    def as_dict(self) -> dict[str, Any]:
        return {"out": str(self.out), "event": self.event, "checkpoint": self.checkpoint,
                "proof_checkpoint": self.proof_checkpoint, "period": self.period, "files": self.files,
                "suppressed": self.suppressed, "revision": self.revision}


def _prepare_out(out: Path) -> None:
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise BadInput(f"--out: {out} exists and is not a directory; choose a new directory")
    if out.exists() and any(out.iterdir()):
        raise BadInput(f"--out: {out} is not empty; a release is written to a new or empty directory")


def publish_stats(workspace: Workspace, as_of: str, period: str, out: Path) -> ReleaseReport:
    """Compute the release at a checkpoint, write it, record the ``published`` event, prove it;
    keep what it hands on in the data directory (``custody.publish.state``), never in the release."""
    from custody.ledger import checkpoint as notes
    from custody.ledger import tree

    _prepare_out(out)
    ledger = workspace.ledger
    rules = rules_from_config(workspace.settings.config, period)
    if as_of == "latest":
        workspace.seal()
    point = checkpoint_row(ledger, as_of)
    made: Made = {}
    home = workspace.settings.home
    tables, history = _release_at(ledger, point["size"], rules, None, made, 0, home)
    earlier = previous_release(ledger, period)
    url = workspace.settings.config.get("publish", {}).get("release_url")
    revision = (revision_against(ledger, earlier, tables, url if isinstance(url, str) else None, made, home)
                if earlier else None)
    state = state_bytes(published_cells(tables), history)
    files = release_files(tables, rules, point, revision)
    details: dict[str, Any] = {
        "checkpoint": {"size": point["size"], "root": point["root"]},
        "rules": rules.as_dict(),
        "files": {name: sha256(data) for name, data in sorted(files.items())},
        DIGEST: digest(state),
    }
    if revision is not None:
        details["previous"] = {"event": revision.previous["event"], "checkpoint": revision.previous["checkpoint"]}
        details["changed_values"] = len(revision.changes)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        for name, data in files.items():
            (staging / name).write_bytes(data)
        event = ledger.append(ACTION, actor=workspace.settings.actor, role=workspace.settings.role, details=details)
        try:
            write_state(home, event, state)
        except OSError:
            pass  # the next release makes this one again from the ledger, as with no state file
        sealed = workspace.seal(force=True)
        assert sealed is not None, "a ledger with an event just appended always seals"
        size, note = sealed.size, sealed.note
        proof = ledger.with_nodes(lambda nodes: tree.inclusion_proof(nodes, event.seq, size))
        (staging / PROOF).write_text(notes.format_tlog_proof(event.seq, proof, note), encoding="utf-8")
        consistency = ledger.with_nodes(lambda nodes: tree.consistency_proof(nodes, point["size"], size))
        (staging / CONSISTENCY).write_text(
            f"{point['size']}\n{size}\n" + "".join(base64.b64encode(h).decode() + "\n" for h in consistency),
            encoding="utf-8")
        (staging / EVENT).write_text(json.dumps(event.as_dict(), indent=2, sort_keys=True, ensure_ascii=False) + "\n",
                                     encoding="utf-8")
        (staging / VERIFIER_KEY).write_text(workspace.verifier().to_text() + "\n", encoding="utf-8")
        cosigned = cosignature_lines(ledger, size)
        if cosigned is not None:
            (staging / COSIGNATURES).write_text(cosigned, encoding="utf-8")
        for path in staging.iterdir():
            os.chmod(path, 0o644)
        os.chmod(staging, 0o755)
        if out.exists():
            out.rmdir()
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return ReleaseReport(out, event.seq, point["size"], size, period, details["files"],
                         suppression_summary(tables), revision.as_dict() if revision else None)
