"""Offline verification of a prosecutor package (a BagIt bag written by ``custody.package.export``).

Needs no database, no object store and no configuration: it imports only the standard library,
``cryptography``, ``blake3`` and the pure parts of custody (``checkpoint``, ``tree``,
``canonical``, ``errors``), never SQLAlchemy or boto3. A test checks that.

The package layout is defined here (``custody.package.export`` writes what this module reads)::

    bagit.txt  bag-info.txt                    BagIt 1.0 (RFC 8493) declaration and metadata
    manifest-sha256.txt  manifest-sha512.txt   payload manifests (sha256sum -c accepts the first)
    blake3sums.txt                             BLAKE3 of every payload file (b3sum -c accepts it)
    tagmanifest-sha256.txt  tagmanifest-sha512.txt   every other file outside data/
    README.txt  report.html  hash-certification.txt
    data/<incident>_<camera>_<time>[_n].<ext>  the original files, byte for byte
    custody/incident.json                      the incident as its events say it is
    custody/items.json                         each payload file: digests, ingest event, extras
    custody/events.jsonl                       the custody events, each with ``leaf`` (canonical bytes)
    custody/proofs/event-<seq>.tlog-proof      C2SP tlog-proof of each event
    custody/checkpoint.txt                     the C2SP signed checkpoint the proofs are against
    custody/verifier.key                       the ledger's verifier key (name+keyid+base64)
    custody/packets/<payload name>.packets     each video's packet hash list (custody-packets v1)
    custody/sheets/<payload name>.png          each video's contact sheet

BLAKE3 is in a tag file, not a ``manifest-blake3.txt``: "blake3" is not a registered hash name,
so a strict BagIt validator may reject such a payload manifest (bagit-python silently skips
it). As a tag file it is covered by the tag manifests, and ``b3sum -c`` still accepts it.

What ``verify_package`` checks, collecting every finding (each naming the file it is about):

1. the bag: ``bagit.txt`` (version 1.0, UTF-8), ``bag-info.txt``, Payload-Oxum;
2. every payload file against each payload manifest and ``blake3sums.txt`` (all three digests
   from one read): missing, unexpected (unlisted) and altered files;
3. every tag file against each tag manifest; tag files that no tag manifest lists;
4. the verifier key, and with ``trusted`` that it is the key the recipient expects;
5. the checkpoint's signature (against the trusted key if given, else the bag's key);
6. each event: its fields are its canonical bytes (``leaf``), its ``hash`` is
   SHA-256(0x00 || leaf), and its tlog-proof proves it at index ``seq`` in the checkpoint;
7. each payload file is bound to its ``ingested`` event (BLAKE3, SHA-256, size) and to a
   ``linked`` event to the incident; each packet list has the SHA-256 its ingest event
   recorded; the incident record's history is those events. (These events must each be proved
   by step 6, or that is a finding; a failed proof is reported once, not again for every file
   bound to the event.)
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import blake3

from custody import TOOL
from custody.ledger import tree
from custody.ledger import checkpoint as notes
from custody.ledger.canonical import canonical_bytes
from custody.errors import BadInput, Finding

BAGIT: Final = "bagit.txt"
BAG_INFO: Final = "bag-info.txt"
PAYLOAD_DIR: Final = "data"
MANIFESTS: Final = {"sha256": "manifest-sha256.txt", "sha512": "manifest-sha512.txt"}
BLAKE3_SUMS: Final = "blake3sums.txt"
TAG_MANIFESTS: Final = {"sha256": "tagmanifest-sha256.txt", "sha512": "tagmanifest-sha512.txt"}
README: Final = "README.txt"
REPORT: Final = "report.html"
CERTIFICATION: Final = "hash-certification.txt"
INCIDENT: Final = "custody/incident.json"
ITEMS: Final = "custody/items.json"
EVENTS: Final = "custody/events.jsonl"
CHECKPOINT: Final = "custody/checkpoint.txt"
VERIFIER_KEY: Final = "custody/verifier.key"
PROOFS: Final = "custody/proofs"
PACKETS: Final = "custody/packets"
SHEETS: Final = "custody/sheets"
BAGIT_TEXT: Final = "BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n"
EVENT_FIELDS: Final = ("seq", "time", "actor", "role", "action", "subject", "details", "tool", "prev_hash")
CHUNK: Final = 4 << 20


def proof_path(seq: int) -> str:
    """Where the tlog-proof of event ``seq`` is in the bag."""
    return f"{PROOFS}/event-{seq}.tlog-proof"


class PayloadDigests:
    """SHA-256, SHA-512 and BLAKE3 of the same bytes, fed chunk by chunk (the two SHA-2 on a
    worker thread each, BLAKE3 on the caller's; all release the GIL)."""

    def __init__(self) -> None:
        self._sha256 = hashlib.sha256()
        self._sha512 = hashlib.sha512()
        self._blake3 = blake3.blake3()
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="payload-hash")
        self.size = 0

    def update(self, chunk: bytes) -> None:
        first = self._pool.submit(self._sha256.update, chunk)
        second = self._pool.submit(self._sha512.update, chunk)
        self._blake3.update(chunk)
        first.result()
        second.result()
        self.size += len(chunk)

    def hexdigests(self) -> dict[str, str]:
        """``{"sha256", "sha512", "blake3"}``; the hasher cannot be fed afterwards."""
        self._pool.shutdown(wait=True)
        return {"sha256": self._sha256.hexdigest(), "sha512": self._sha512.hexdigest(), "blake3": self._blake3.hexdigest()}


def file_digests(path: Path) -> tuple[dict[str, str], int]:
    """(digests, size) of a file in one read. A read error propagates as ``OSError``."""
    hasher = PayloadDigests()
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(CHUNK):
                hasher.update(chunk)
    finally:
        digests = hasher.hexdigests()
    return digests, hasher.size


def parse_manifest(text: str) -> tuple[dict[str, str], list[str]]:
    """(path -> lowercase hex digest, malformed lines) of a BagIt manifest or a ``sha256sum`` /
    ``b3sum`` list (``digest<whitespace>path``; a leading ``\\`` or ``*`` before the path, as
    those tools may write, is removed). Percent-encoded ``%0A %0D %25`` are decoded (RFC 8493)."""
    entries: dict[str, str] = {}
    bad: list[str] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split(None, 1)
        if len(parts) != 2 or not all(c in "0123456789abcdefABCDEF" for c in parts[0].lstrip("\\")):
            bad.append(f"line {number}")
            continue
        digest, name = parts[0].lstrip("\\"), parts[1]
        if name.startswith("*"):
            name = name[1:]
        name = name.replace("%0A", "\n").replace("%0D", "\r").replace("%25", "%")
        entries[name] = digest.lower()
    return entries, bad


def parse_bag_info(text: str) -> dict[str, list[str]]:
    """The labels of ``bag-info.txt`` (continuation lines start with whitespace)."""
    info: dict[str, list[str]] = {}
    last: str | None = None
    for line in text.splitlines():
        if line[:1] in (" ", "\t") and last is not None:
            info[last][-1] += " " + line.strip()
            continue
        label, sep, value = line.partition(":")
        if not sep:
            continue
        last = label.strip()
        info.setdefault(last, []).append(value.strip())
    return info


@dataclass
class Check:
    """One step of the verification and what it found."""

    name: str
    detail: str = ""
    findings: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"check": self.name, "ok": self.findings == 0, "detail": self.detail, "findings": self.findings}


@dataclass
class PackageReport:
    """What ``verify_package`` checked and found. ``ok`` only when there is no finding."""

    path: str
    incident: str | None = None
    package_id: str | None = None
    payload_files: int = 0
    payload_bytes: int = 0
    tag_files: int = 0
    events: int = 0
    proved_events: int = 0
    checkpoint: dict[str, Any] | None = None
    key: str | None = None
    key_trusted: bool = False
    tagmanifest_sha256: str | None = None
    checks: list[Check] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    tool: str = TOOL

    @property
    def ok(self) -> bool:
        return not self.findings

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "path": self.path,
            "incident": self.incident,
            "package_id": self.package_id,
            "payload_files": self.payload_files,
            "payload_bytes": self.payload_bytes,
            "tag_files": self.tag_files,
            "events": self.events,
            "proved_events": self.proved_events,
            "checkpoint": self.checkpoint,
            "key": self.key,
            "key_trusted": self.key_trusted,
            "tagmanifest_sha256": self.tagmanifest_sha256,
            "checks": [c.as_dict() for c in self.checks],
            "findings": [f.as_dict() for f in self.findings],
            "tool": self.tool,
        }


@dataclass
class _Event:
    line: int
    record: dict[str, Any]
    proved: bool = False
    body_ok: bool = False
    """Its ``leaf`` is canonical JSON of an event with its ``seq``."""

    @property
    def where(self) -> str:
        return f"{EVENTS}:{self.line} (event {self.record.get('seq')})"


class _Verification:
    """The state of one verification: the report, and what the later steps need."""

    def __init__(self, root: Path, trusted: notes.Verifier | None) -> None:
        self.root = root
        self.trusted = trusted
        self.report = PackageReport(str(root))
        self.payload: dict[str, tuple[dict[str, str], int]] = {}
        self.unreadable: set[str] = set()
        self.key: notes.Verifier | None = None
        self.checkpoint: notes.Checkpoint | None = None
        self.checkpoint_text: str | None = None
        self.events: dict[int, _Event] = {}
        self._check: Check | None = None

    def begin(self, name: str) -> Check:
        self._check = Check(name)
        self.report.checks.append(self._check)
        return self._check

    def finding(self, kind: str, subject: str, message: str, algorithm: str | None = None,
                expected: str | None = None, found: str | None = None, **extra: Any) -> None:
        self.report.findings.append(Finding(kind, subject, message, algorithm, expected, found, dict(extra)))
        if self._check is not None:
            self._check.findings += 1

    def read_text(self, name: str, *, required: bool = True) -> str | None:
        """A tag file's text, or None after a finding (missing, unreadable, not UTF-8)."""
        path = self.root / name
        try:
            return path.read_bytes().decode("utf-8")
        except FileNotFoundError:
            if required:
                self.finding("missing", name, "required file is missing from the package")
            return None
        except IsADirectoryError:
            self.finding("malformed", name, "is a directory, not a file")
            return None
        except OSError as exc:
            self.finding("unreadable", name, f"cannot be read: {exc.strerror}")
            return None
        except UnicodeDecodeError:
            self.finding("malformed", name, "is not UTF-8 text")
            return None


def verify_package(root: Path, trusted: notes.Verifier | None = None) -> PackageReport:
    """Verify the package in directory ``root`` (see the module docstring for what is checked).

    Never stops at the first finding. Raises ``BadInput`` only when ``root`` is not a
    directory; everything wrong inside it is a finding in the report."""
    if not root.is_dir():
        raise BadInput(f"{root}: not a directory (give the package's directory)")
    state = _Verification(root, trusted)
    _check_bag(state)
    _check_payload(state)
    _check_tags(state)
    _check_signature(state)
    _check_events(state)
    _check_bindings(state)
    return state.report


def walk_files(root: Path, top: str) -> Iterable[tuple[str, os.stat_result]]:
    """(path relative to ``root``, in POSIX form; lstat) of every non-directory under
    ``root/top``, sorted. Symbolic links are listed, never followed."""
    base = root / top
    if not base.is_dir():
        return []
    found = []
    for directory, subdirs, files in os.walk(base):
        subdirs.sort()
        for name in sorted(files) + sorted(d for d in subdirs if os.path.islink(os.path.join(directory, d))):
            full = os.path.join(directory, name)
            found.append((Path(os.path.relpath(full, root)).as_posix(), os.lstat(full)))
    return sorted(found)


def _check_bag(state: _Verification) -> None:
    check = state.begin("bag declaration")
    text = state.read_text(BAGIT)
    if text is not None and text.replace("\r\n", "\n") != BAGIT_TEXT:
        state.finding("malformed", BAGIT, "must declare 'BagIt-Version: 1.0' and 'Tag-File-Character-Encoding: UTF-8'")
    info_text = state.read_text(BAG_INFO)
    info = parse_bag_info(info_text) if info_text is not None else {}
    incident = info.get("External-Identifier", [None])[0]
    state.report.incident = incident
    state.report.package_id = info.get("Internal-Sender-Identifier", [None])[0]
    if info_text is not None and not incident:
        state.finding("malformed", BAG_INFO, "has no External-Identifier (the incident)")
    if not (state.root / PAYLOAD_DIR).is_dir():
        state.finding("missing", PAYLOAD_DIR, "the payload directory is missing")
    oxum = info.get("Payload-Oxum", [None])[0]
    files = list(walk_files(state.root, PAYLOAD_DIR))
    count, size = len(files), sum(st.st_size for _, st in files if stat.S_ISREG(st.st_mode))
    if info_text is not None:
        if oxum is None:
            state.finding("malformed", BAG_INFO, "has no Payload-Oxum")
        elif oxum != f"{size}.{count}":
            state.finding(
                "mismatch", BAG_INFO, f"Payload-Oxum says {oxum} (bytes.files) but data/ holds {size}.{count}",
                "payload-oxum", oxum, f"{size}.{count}",
            )
    check.detail = f"BagIt 1.0, Payload-Oxum {oxum}"


def _check_payload(state: _Verification) -> None:
    check = state.begin("payload manifests")
    for name, st in walk_files(state.root, PAYLOAD_DIR):
        if not stat.S_ISREG(st.st_mode):
            state.finding("unexpected", name, "is not a regular file (a payload holds only regular files)")
            state.unreadable.add(name)
            continue
        try:
            state.payload[name] = file_digests(state.root / name)
        except OSError as exc:
            state.finding("unreadable", name, f"cannot be read: {exc.strerror}")
            state.unreadable.add(name)
    present = set(state.payload) | state.unreadable
    lists = [(alg, manifest) for alg, manifest in MANIFESTS.items()] + [("blake3", BLAKE3_SUMS)]
    missing: dict[str, list[str]] = {}
    unlisted: dict[str, list[str]] = {}
    for algorithm, manifest in lists:
        text = state.read_text(manifest)
        if text is None:
            continue
        entries, bad = parse_manifest(text)
        for where in bad:
            state.finding("malformed", manifest, f"{where} is not 'digest  path'")
        for name in sorted(entries):
            if not name.startswith(PAYLOAD_DIR + "/") or ".." in name.split("/"):
                state.finding("malformed", manifest, f"lists {name!r}, which is not a path under data/")
                continue
            if name not in present:
                missing.setdefault(name, []).append(manifest)
                continue
            if name in state.unreadable:
                continue
            found = state.payload[name][0][algorithm]
            if found != entries[name]:
                state.finding(
                    "mismatch", name, f"its {algorithm.upper()} is not the one in {manifest} (the file was altered)",
                    algorithm, entries[name], found, manifest=manifest,
                )
        for name in sorted(present - set(entries)):
            unlisted.setdefault(name, []).append(manifest)
    for name, manifests in sorted(missing.items()):
        state.finding("missing", name, f"listed in {', '.join(manifests)} but not in the package (removed)")
    for name, manifests in sorted(unlisted.items()):
        state.finding("unexpected", name, f"in data/ but not listed in {', '.join(manifests)} (added)")
    state.report.payload_files = len(present)
    state.report.payload_bytes = sum(size for _, size in state.payload.values())
    check.detail = f"{len(present)} file(s), SHA-256, SHA-512 and BLAKE3"


def _check_tags(state: _Verification) -> None:
    check = state.begin("tag manifests")
    tag_files = {
        name for name, st in walk_files(state.root, ".")
        if not name.startswith(PAYLOAD_DIR + "/") and name not in TAG_MANIFESTS.values()
    }
    listed: set[str] = set()
    for algorithm, manifest in TAG_MANIFESTS.items():
        path = state.root / manifest
        if not path.exists() and algorithm != "sha256":
            continue
        text = state.read_text(manifest)
        if text is None:
            continue
        if algorithm == "sha256":
            state.report.tagmanifest_sha256 = hashlib.sha256(text.encode("utf-8")).hexdigest()
        entries, bad = parse_manifest(text)
        for where in bad:
            state.finding("malformed", manifest, f"{where} is not 'digest  path'")
        for name, expected in sorted(entries.items()):
            listed.add(name)
            if name.startswith(PAYLOAD_DIR + "/") or ".." in name.split("/") or name.startswith("/"):
                state.finding("malformed", manifest, f"lists {name!r}, which is not a tag file")
                continue
            target = state.root / name
            try:
                found = hashlib.new(algorithm, target.read_bytes()).hexdigest()
            except FileNotFoundError:
                state.finding("missing", name, f"listed in {manifest} but not in the package (removed)")
                continue
            except OSError as exc:
                state.finding("unreadable", name, f"cannot be read: {exc.strerror}")
                continue
            if found != expected:
                state.finding(
                    "mismatch", name, f"its {algorithm.upper()} is not the one in {manifest} (the file was altered)",
                    algorithm, expected, found, manifest=manifest,
                )
    for name in sorted(tag_files - listed):
        state.finding("unexpected", name, f"not listed in {TAG_MANIFESTS['sha256']} (added to the package)")
    state.report.tag_files = len(tag_files)
    check.detail = f"{len(tag_files)} tag file(s)"


def _check_signature(state: _Verification) -> None:
    check = state.begin("checkpoint signature")
    key_text = state.read_text(VERIFIER_KEY)
    if key_text is not None:
        try:
            state.key = notes.Verifier.from_text(key_text.strip())
        except notes.TlogError as exc:
            state.finding("malformed", VERIFIER_KEY, f"is not a verifier key: {exc}")
    if state.key is not None:
        state.report.key = state.key.to_text()
    verifier = state.trusted or state.key
    if state.trusted is not None:
        if state.key is not None and state.key != state.trusted:
            state.finding(
                "untrusted-key", VERIFIER_KEY,
                f"is {state.key.to_text()}, not the trusted key {state.trusted.to_text()}: "
                "this package was not signed by the ledger you expect",
                expected=state.trusted.to_text(), found=state.key.to_text(),
            )
        else:
            state.report.key_trusted = True
    text = state.read_text(CHECKPOINT)
    if text is None or verifier is None:
        return
    state.checkpoint_text = text
    try:
        checkpoint, _ = notes.open_checkpoint(text, [verifier], origin=verifier.name)
    except notes.UnverifiedNote:
        state.finding("bad-signature", CHECKPOINT, f"is not signed by {'the trusted' if state.trusted else 'the package'} key {verifier.to_text()}")
        return
    except notes.InvalidSignature:
        state.finding("bad-signature", CHECKPOINT, f"its signature by {verifier.to_text()} does not verify (altered)")
        return
    except notes.OriginMismatch as exc:
        state.finding("malformed", CHECKPOINT, f"is for the log {exc.actual!r}, not {exc.expected!r}")
        return
    except notes.TlogError as exc:
        state.finding("malformed", CHECKPOINT, f"is not a signed checkpoint: {exc}")
        return
    state.checkpoint = checkpoint
    state.report.checkpoint = {"origin": checkpoint.origin, "size": checkpoint.size, "root": checkpoint.root.hex()}
    check.detail = f"tree of {checkpoint.size} events signed by {verifier.to_text()}" + (
        " (the trusted key)" if state.trusted and state.report.key_trusted else " (the package's own key; pin it with --trust-key)"
    )


def _check_events(state: _Verification) -> None:
    check = state.begin("custody events and proofs")
    text = state.read_text(EVENTS)
    referenced: set[str] = set()
    if text is not None:
        for number, line in enumerate(text.split("\n"), 1):
            if not line.strip():
                continue
            event = _event_line(state, number, line)
            if event is None:
                continue
            seq = event.record["seq"]
            if seq in state.events:
                state.finding("malformed", event.where, f"event {seq} appears twice")
                continue
            state.events[seq] = event
            referenced.add(proof_path(seq))
            _prove(state, event)
    for name, _ in walk_files(state.root, PROOFS):
        if name not in referenced:
            state.finding("unexpected", name, f"a proof of no event in {EVENTS}")
    state.report.events = len(state.events)
    state.report.proved_events = sum(1 for e in state.events.values() if e.proved)
    size = state.checkpoint.size if state.checkpoint else "?"
    check.detail = f"{state.report.proved_events} of {len(state.events)} event(s) proved in the tree of {size}"


def _event_line(state: _Verification, number: int, line: str) -> _Event | None:
    where = f"{EVENTS}:{number}"
    try:
        record = json.loads(line)
    except ValueError:
        state.finding("malformed", where, "is not JSON")
        return None
    if not isinstance(record, dict) or not isinstance(record.get("leaf"), str) or isinstance(record.get("seq"), bool) \
            or not isinstance(record.get("seq"), int) or record["seq"] < 0:
        state.finding("malformed", where, "is not an event with 'seq' and 'leaf'")
        return None
    event = _Event(number, record)
    leaf = record["leaf"]
    try:
        body = json.loads(leaf)
        canonical = canonical_bytes(body)
    except ValueError:
        state.finding("malformed", event.where, "its 'leaf' is not canonical JSON")
        return None
    if canonical != leaf.encode("utf-8", "surrogatepass"):
        state.finding("malformed", event.where, "its 'leaf' is not in canonical form")
    if not isinstance(body, dict) or body.get("seq") != record["seq"]:
        state.finding("mismatch", event.where, "its 'leaf' is not the event with this seq")
        return event
    event.body_ok = True
    shown = {name: record.get(name) for name in EVENT_FIELDS}
    if shown != {name: body.get(name) for name in EVENT_FIELDS}:
        changed = sorted(name for name in EVENT_FIELDS if record.get(name) != body.get(name))
        state.finding("mismatch", event.where,
                      f"its fields {', '.join(changed)} differ from its canonical bytes ('leaf'): the line was edited")
    digest = tree.leaf_hash(leaf.encode("utf-8", "surrogatepass")).hex()
    if record.get("hash") != digest:
        state.finding("mismatch", event.where, "its 'hash' is not SHA-256(0x00 || leaf): the line was edited",
                      "sha256", str(record.get("hash")), digest)
    return event


def _prove(state: _Verification, event: _Event) -> None:
    seq = event.record["seq"]
    name = proof_path(seq)
    text = state.read_text(name)
    if text is None:
        return
    try:
        proof = notes.parse_tlog_proof(text)
    except notes.TlogError as exc:
        state.finding("malformed", name, f"is not a C2SP tlog-proof: {exc}")
        return
    if proof.index != seq:
        state.finding("mismatch", name, f"proves index {proof.index}, not event {seq}")
        return
    if state.checkpoint_text is not None and proof.checkpoint != state.checkpoint_text:
        state.finding("mismatch", name, f"is against another checkpoint than {CHECKPOINT}")
        return
    if state.checkpoint is None:
        return
    if seq >= state.checkpoint.size:
        state.finding("unproved", event.where, f"event {seq} is beyond the checkpoint's {state.checkpoint.size} events")
        return
    leaf = tree.leaf_hash(event.record["leaf"].encode("utf-8", "surrogatepass"))
    if not tree.verify_inclusion(leaf, seq, state.checkpoint.size, proof.proof, state.checkpoint.root):
        state.finding(
            "unproved", event.where,
            f"is not in the signed tree: {name} does not prove it against {CHECKPOINT} "
            "(the event or its proof was altered)",
            proof=name,
        )
        return
    event.proved = True


def _claimed(state: _Verification) -> list[dict[str, Any]]:
    """The canonical bodies of the events, in sequence order. Those whose proofs failed are
    findings already; binding the payload to them too reports the root cause once."""
    bodies = []
    for seq in sorted(state.events):
        event = state.events[seq]
        if event.body_ok:
            body = json.loads(event.record["leaf"])
            if isinstance(body, dict):
                bodies.append(body)
    return bodies


def _as_seq(value: Any) -> int:
    """An event number from untrusted JSON (-1, which no event has, for anything else)."""
    return value if isinstance(value, int) and not isinstance(value, bool) else -1


def _check_bindings(state: _Verification) -> None:
    check = state.begin("payload bound to custody events")
    claimed = _claimed(state)
    by_seq = {body["seq"]: body for body in claimed}
    incident = state.report.incident
    items_text = state.read_text(ITEMS)
    items: list[Any] = []
    if items_text is not None:
        try:
            loaded = json.loads(items_text)
        except ValueError:
            state.finding("malformed", ITEMS, "is not JSON")
        else:
            if isinstance(loaded, list) and all(isinstance(i, dict) for i in loaded):
                items = loaded
            else:
                state.finding("malformed", ITEMS, "is not a list of items")
    described: set[str] = set()
    for item in items:
        _check_item(state, item, by_seq, claimed, incident)
        described.add(str(item.get("file")))
    for name in sorted(set(state.payload) - described):
        state.finding("unrecorded", name, f"is not described in {ITEMS}, so no custody event vouches for it")
    _check_incident(state, by_seq, incident)
    check.detail = f"{len(described)} item(s) against {len(claimed)} event(s)"


def _check_item(state: _Verification, item: Mapping[str, Any], by_seq: Mapping[int, dict[str, Any]],
                claimed: list[dict[str, Any]], incident: str | None) -> None:
    name = str(item.get("file"))
    if name not in state.payload:
        if name not in state.unreadable and not any(f.subject == name for f in state.report.findings):
            state.finding("missing", name, f"described in {ITEMS} but not in the package")
        return
    digests, size = state.payload[name]
    ingest = by_seq.get(_as_seq(item.get("ingest_seq")))
    details: Mapping[str, Any] = ingest.get("details", {}) if ingest else {}
    if ingest is None or ingest.get("action") != "ingested":
        state.finding("unrecorded", name, f"its ingest event {item.get('ingest_seq')} is not in {EVENTS}")
    else:
        for label, recorded, found in (
            ("blake3", ingest.get("subject", {}).get("evidence"), digests["blake3"]),
            ("sha256", details.get("sha256"), digests["sha256"]),
            ("size", details.get("size"), size),
        ):
            if recorded != found:
                state.finding(
                    "mismatch", name, f"its {label} differs from the one recorded at ingest (event {ingest['seq']})",
                    label, str(recorded), str(found),
                )
    blake3_hex = str(ingest.get("subject", {}).get("evidence")) if ingest else digests["blake3"]
    if incident and not any(
        b.get("action") == "linked" and b.get("subject", {}).get("evidence") == blake3_hex
        and b.get("subject", {}).get("incident") == incident
        for b in claimed
    ):
        state.finding("unrecorded", name, f"no 'linked' event in {EVENTS} ties it to incident {incident}")
    packets = item.get("packets")
    if packets:
        recorded = ((details.get("attachments") or {}).get("packets") or {}).get("sha256")
        data = _read_bytes(state, str(packets))
        if data is not None:
            found_sha = hashlib.sha256(data).hexdigest()
            if recorded is None:
                state.finding("unrecorded", str(packets), "its ingest event recorded no packet list")
            elif found_sha != recorded:
                state.finding(
                    "mismatch", str(packets),
                    f"its SHA-256 is not the one recorded at ingest (event {item.get('ingest_seq')})",
                    "sha256", recorded, found_sha,
                )


def _read_bytes(state: _Verification, name: str) -> bytes | None:
    if ".." in name.split("/") or name.startswith("/"):
        state.finding("malformed", ITEMS, f"names {name!r}, outside the package")
        return None
    try:
        return (state.root / name).read_bytes()
    except OSError as exc:
        if not any(f.subject == name for f in state.report.findings):
            state.finding("missing" if isinstance(exc, FileNotFoundError) else "unreadable", name,
                          f"cannot be read: {exc.strerror}")
        return None


def _check_incident(state: _Verification, by_seq: Mapping[int, dict[str, Any]], incident: str | None) -> None:
    text = state.read_text(INCIDENT)
    if text is None:
        return
    try:
        record = json.loads(text)
    except ValueError:
        state.finding("malformed", INCIDENT, "is not JSON")
        return
    if not isinstance(record, dict):
        state.finding("malformed", INCIDENT, "is not an incident record")
        return
    if incident is not None and record.get("incident") != incident:
        state.finding("mismatch", INCIDENT, f"is about {record.get('incident')!r}, not the package's {incident!r}")
    for entry in record.get("history") or []:
        if not isinstance(entry, dict):
            state.finding("malformed", INCIDENT, "has a history entry that is not an object")
            continue
        body = by_seq.get(_as_seq(entry.get("seq")))
        if body is None:
            state.finding("unrecorded", INCIDENT, f"its history names event {entry.get('seq')}, which is not in {EVENTS}")
            continue
        for name in ("time", "actor", "action", "details"):
            if entry.get(name) != body.get(name):
                state.finding("mismatch", INCIDENT,
                              f"its history entry for event {body['seq']} differs from the event ({name})")
                break


def read_verifier_key(value: str) -> notes.Verifier:
    """A verifier key given as its text (``name+keyid+base64``) or as a file holding it.
    ``BadInput`` when it is neither."""
    text = value.strip()
    if "+" not in text or os.path.isfile(value):
        try:
            text = Path(value).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise BadInput(f"{value}: neither a verifier key (name+keyid+base64) nor a readable file holding one") from exc
    try:
        return notes.Verifier.from_text(text)
    except notes.TlogError as exc:
        raise BadInput(f"{value}: not a verifier key: {exc}") from exc
