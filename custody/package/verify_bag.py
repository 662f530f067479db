"""Verification steps 1-3: the bag declaration, the payload against its manifests (all three
digests from one read), and the tag files against the tag manifests."""

from __future__ import annotations

import hashlib
import stat

from custody.package.digests import file_digests
from custody.package.layout import (
    BAG_INFO, BAGIT, BAGIT_TEXT, BLAKE3_SUMS, MANIFESTS, PAYLOAD_DIR, TAG_MANIFESTS, parse_bag_info, parse_manifest,
    walk_files,
)
from custody.package.verification import Verification


def check_bag(state: Verification) -> None:
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


def check_payload(state: Verification) -> None:
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
            state.finding("malformed", manifest, where)
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


def check_tags(state: Verification) -> None:
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
            state.finding("malformed", manifest, where)
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
