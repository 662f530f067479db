"""Verification steps 1-3: what the directory holds (no links, no special files), the bag
declaration, the payload against its manifests (all three digests from one read), and the tag
files against the tag manifests."""

from __future__ import annotations

import hashlib

from custody.errors import FindingKind
from custody.package.digests import stream_digests
from custody.package.layout import (
    BAG_INFO, BAGIT, BAGIT_TEXT, BLAKE3_SUMS, CHUNK, MANIFESTS, PAYLOAD_DIR, SEAL, TAG_MANIFESTS, parse_bag_info,
    parse_manifest,
)
from custody.package.reading import UnsafeEntry
from custody.package.verification import Verification

_PACKAGE_MARKS = (BAGIT, BAG_INFO, PAYLOAD_DIR, "custody", MANIFESTS["sha256"], TAG_MANIFESTS["sha256"])


def check_contents(state: Verification) -> bool:
    """List the package (bounded, links and special files reported, never followed or
    opened). False when the directory holds nothing of a package: one finding says so."""
    check = state.begin("contents")
    try:
        for entry in state.files.walk():
            state.entries[entry.name] = entry
    except UnsafeEntry as exc:
        state.finding(FindingKind.UNSAFE, exc.name or ".", exc.reason)
    except OSError as exc:
        state.finding(FindingKind.UNREADABLE, ".", f"the package directory cannot be listed: {exc.strerror or exc}")
    tops = {name.split("/", 1)[0] for name in state.entries}
    if not any(mark in tops for mark in _PACKAGE_MARKS):
        state.report.is_package = False
        state.finding(FindingKind.NOT_A_PACKAGE, str(state.root),
                      "holds none of a package's files (bagit.txt, bag-info.txt, data/, custody/): "
                      "give the directory that 'custody export' wrote")
        return False
    for name, entry in sorted(state.entries.items()):
        if entry.kind == "link":
            state.finding(FindingKind.UNSAFE, name, "is a symbolic link; a package holds none, and it was not followed")
        elif entry.kind == "special":
            state.finding(FindingKind.UNSAFE, name, "is a FIFO, device or socket, not a regular file; it was not opened")
    check.detail = f"{len(state.entries)} entr{'y' if len(state.entries) == 1 else 'ies'}, no link followed"
    return True


def check_bag(state: Verification) -> None:
    check = state.begin("bag declaration")
    text = state.read_text(BAGIT, limit=4096)
    if text is not None and text.replace("\r\n", "\n") != BAGIT_TEXT:
        state.finding(FindingKind.MALFORMED, BAGIT, "must declare 'BagIt-Version: 1.0' and 'Tag-File-Character-Encoding: UTF-8'")
    info_text = state.read_text(BAG_INFO, limit=1 << 20)
    info = parse_bag_info(info_text) if info_text is not None else {}
    incident = info.get("External-Identifier", [None])[0]
    state.report.incident = incident
    state.report.package_id = info.get("Internal-Sender-Identifier", [None])[0]
    if info_text is not None and not incident:
        state.finding(FindingKind.MALFORMED, BAG_INFO, "has no External-Identifier (the incident)")
    for label in ("External-Identifier", "Internal-Sender-Identifier", "Payload-Oxum"):
        if len(info.get(label, [])) > 1:
            state.finding(FindingKind.MALFORMED, BAG_INFO, f"gives {label} {len(info[label])} times (ambiguous)")
    root = state.files.lstat(PAYLOAD_DIR)
    if root is None:
        state.finding(FindingKind.MISSING, PAYLOAD_DIR, "the payload directory is missing")
    payload = [e for name, e in state.entries.items() if name.startswith(PAYLOAD_DIR + "/")]
    oxum = info.get("Payload-Oxum", [None])[0]
    count, size = len(payload), sum(e.size for e in payload if e.kind == "file")
    if info_text is not None:
        if oxum is None:
            state.finding(FindingKind.MALFORMED, BAG_INFO, "has no Payload-Oxum")
        elif oxum != f"{size}.{count}":
            state.finding(
                FindingKind.MISMATCH, BAG_INFO, f"Payload-Oxum says {oxum} (bytes.files) but data/ holds {size}.{count}",
                "payload-oxum", oxum, f"{size}.{count}",
            )
    check.detail = f"BagIt 1.0, Payload-Oxum {oxum or 'absent'}"


def check_payload(state: Verification) -> None:
    check = state.begin("payload manifests")
    for name, entry in sorted(state.entries.items()):
        if not name.startswith(PAYLOAD_DIR + "/"):
            continue
        if entry.kind != "file":
            state.unreadable.add(name)
            continue
        try:
            with state.files.open(name) as handle:
                state.payload[name] = stream_digests(handle)
        except UnsafeEntry as exc:
            state.finding(FindingKind.UNSAFE, name, exc.reason)
            state.unreadable.add(name)
        except OSError as exc:
            state.finding(FindingKind.UNREADABLE, name, f"cannot be read: {exc.strerror or exc}")
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
            state.finding(FindingKind.MALFORMED, manifest, where)
        for name in sorted(entries):
            if not name.startswith(PAYLOAD_DIR + "/") or ".." in name.split("/"):
                state.finding(FindingKind.MALFORMED, manifest, f"lists {name!r}, which is not a path under data/")
                continue
            if name not in present:
                missing.setdefault(name, []).append(manifest)
                continue
            if name in state.unreadable:
                continue
            found = state.payload[name][0][algorithm]
            if found != entries[name]:
                state.finding(
                    FindingKind.MISMATCH, name, f"its {algorithm.upper()} is not the one in {manifest} (the file was altered)",
                    algorithm, entries[name], found, manifest=manifest,
                )
        for name in sorted(present - set(entries)):
            unlisted.setdefault(name, []).append(manifest)
    for name, manifests in sorted(missing.items()):
        state.finding(FindingKind.MISSING, name, f"listed in {', '.join(manifests)} but not in the package (removed)")
    for name, manifests in sorted(unlisted.items()):
        state.finding(FindingKind.UNEXPECTED, name, f"in data/ but not listed in {', '.join(manifests)} (added)")
    state.report.payload_files = len(present)
    state.report.payload_bytes = sum(size for _, size in state.payload.values())
    check.detail = f"{len(present)} file(s), SHA-256, SHA-512 and BLAKE3"


def file_digest(state: Verification, name: str, algorithm: str) -> str | None:
    """The hex digest of a regular file of the package, streamed; None after a finding."""
    try:
        with state.files.open(name) as handle:
            hasher = hashlib.new(algorithm)
            while chunk := handle.read(CHUNK):
                hasher.update(chunk)
            return hasher.hexdigest()
    except FileNotFoundError:
        if not state.has_finding(name):
            state.finding(FindingKind.MISSING, name, "is listed but not in the package (removed)")
    except UnsafeEntry as exc:
        if not state.has_finding(name):
            state.finding(FindingKind.UNSAFE, name, exc.reason)
    except OSError as exc:
        if not state.has_finding(name):
            state.finding(FindingKind.UNREADABLE, name, f"cannot be read: {exc.strerror or exc}")
    return None


def check_tags(state: Verification) -> None:
    check = state.begin("tag manifests")
    tag_files = {
        name for name in state.entries
        if not name.startswith(PAYLOAD_DIR + "/") and name not in TAG_MANIFESTS.values() and name != SEAL
    }
    listed: set[str] = set()
    for algorithm, manifest in TAG_MANIFESTS.items():
        if manifest not in state.entries and algorithm != "sha256":
            continue
        text = state.read_text(manifest)
        if text is None:
            continue
        if algorithm == "sha256":
            state.report.tagmanifest_sha256 = hashlib.sha256(text.encode("utf-8")).hexdigest()
        entries, bad = parse_manifest(text)
        for where in bad:
            state.finding(FindingKind.MALFORMED, manifest, where)
        for name, expected in sorted(entries.items()):
            listed.add(name)
            if name.startswith(PAYLOAD_DIR + "/") or ".." in name.split("/") or name.startswith("/"):
                state.finding(FindingKind.MALFORMED, manifest, f"lists {name!r}, which is not a tag file")
                continue
            if name not in state.entries:
                state.finding(FindingKind.MISSING, name, f"listed in {manifest} but not in the package (removed)")
                continue
            if state.entries[name].kind != "file":
                continue
            found = file_digest(state, name, algorithm)
            if found is not None and found != expected:
                state.finding(
                    FindingKind.MISMATCH, name, f"its {algorithm.upper()} is not the one in {manifest} (the file was altered)",
                    algorithm, expected, found, manifest=manifest,
                )
    for name in sorted(tag_files - listed):
        if state.entries[name].kind == "file":
            state.finding(FindingKind.UNEXPECTED, name, f"not listed in {TAG_MANIFESTS['sha256']} (added to the package)")
    state.report.tag_files = len(tag_files)
    check.detail = f"{len(tag_files)} tag file(s)"
