"""Content credentials (C2PA) embedded in a file, read and validated at ingest with the C2PA
project's own library (``c2pa-python``, bindings to ``c2pa-rs``).

``read_credentials(path)`` never raises for a file: what it finds is a ledger-ready record (the
ingest event's ``content_credentials``)::

    status            "valid" | "invalid" | "absent" | "unsupported" | "error"
    validation_state  the library's word: "Trusted", "Valid" or "Invalid"
    trusted           whether the signer chains to a configured trust anchor
    signer            common_name, issuer, serial, alg, time (what the signature says)
    claim_generator   the software that made the active manifest ("name/version", ...)
    hard_binding      "match" | "mismatch" | "not-checked": whether the hash the manifest
                      binds to the asset (data, BMFF or boxes hash) matches these bytes
    errors            the library's validation status entries ({code, explanation}), capped
    manifests, active_manifest, embedded, tool
    finding           one line for people when the credentials are invalid or unreadable

A file without a manifest is ``absent``: nothing claims anything, which is not a fault. A file
whose format the library cannot carry credentials in is ``unsupported``. A manifest that fails
validation (a hard binding that no longer matches the bytes, a broken signature) is ``invalid``,
and the library refusing the file (a corrupt manifest store) is ``error``; both carry a
``finding`` and are reported at ingest, and the bytes are preserved as they are either way.

Bounds: an MP4/MOV whose file-level boxes hold no C2PA ``uuid`` box is ``absent`` from its box
headers alone (``bmff_manifest_box``: a few reads of 32 bytes, no library call). Otherwise the
library reads the file in a worker process of its own (``custody.media.c2pa_worker``: started on
the first such file, reused, with a memory limit and a deadline), so that a hostile file that
crashes, exhausts or hangs the native library is ``error`` with a ``finding`` naming the file and
what happened, and the ingest goes on. The library streams the file (its hard-binding check is the only full read, and at ingest it runs
in the background inspection while the one read hashes the file, so the file comes from the
page cache, never from memory: nothing holds the whole file); nothing is fetched over the network (remote manifests and OCSP are
switched off); at most ``MAX_ERRORS`` status entries of at most ``MAX_TEXT`` characters each
are recorded, and a manifest store whose JSON exceeds ``MAX_JSON`` is recorded as an error.
"""

from __future__ import annotations

import json
import os
import re
import stat
import threading
from collections.abc import Mapping
from importlib import metadata
from typing import Any, BinaryIO

from custody.media.c2pa_worker import LibraryWorker
from custody.media.tools import _clean

MAX_ERRORS = 20
MAX_TEXT = 300
MAX_JSON = 16 << 20
_HARD_BINDING = re.compile(r"^assertion\.(dataHash|bmffHash|boxesHash|collectionHash)\.(match|mismatch)$")
_SETTINGS: dict[str, Any] = {"verify": {"remote_manifest_fetch": False, "ocsp_fetch": False}}
C2PA_BMFF_UUID = bytes.fromhex("d8fec3d61b0e483c92975828877ec481")
"""The ``uuid`` box that holds a C2PA manifest store in an ISO BMFF file (MP4, MOV): at file level."""
_BMFF_FIRST = {b"ftyp", b"styp", b"moov", b"mdat", b"free", b"skip", b"wide", b"uuid", b"pnot"}
MAX_BOXES = 100_000


def bmff_manifest_box(handle: BinaryIO) -> bool | None:
    """Whether an ISO BMFF file has a C2PA ``uuid`` box at file level, from its box headers
    alone (32 bytes a box, at most ``MAX_BOXES``); None when it is not BMFF or its boxes do
    not add up, so that the library decides."""
    size_of = handle.seek(0, 2)
    offset = 0
    for _ in range(MAX_BOXES):
        if offset == size_of:
            return False
        handle.seek(offset)
        head = handle.read(32)
        if len(head) < 8:
            return None
        size, kind = int.from_bytes(head[:4], "big"), head[4:8]
        if offset == 0 and kind not in _BMFF_FIRST:
            return None
        body = 8
        if size == 1:
            if len(head) < 16:
                return None
            size, body = int.from_bytes(head[8:16], "big"), 16
        elif size == 0:
            size = size_of - offset
        if size < body or offset + size > size_of:
            return None
        if kind == b"uuid" and head[body:body + 16] == C2PA_BMFF_UUID:
            return True
        offset += size
    return None


def _text(value: Any) -> str:
    text = _clean(str(value))
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


MAX_ANCHORS = 1 << 20


def trust_anchors_from(config: Mapping[str, Any]) -> str | None:
    """The PEM certificates named by ``[content_credentials] trust_anchors = "PATH"`` in
    config.toml (the roots of the signers an agency trusts, e.g. its camera vendor's), or None.
    ``ConfigError`` (exit 5) naming the file when it cannot be used."""
    from custody.errors import ConfigError

    section = config.get("content_credentials") or {}
    path = section.get("trust_anchors") if isinstance(section, dict) else None
    if path is None:
        return None
    if not isinstance(path, str) or not path:
        raise ConfigError("[content_credentials] trust_anchors: give the path of a PEM file of certificates")
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_ANCHORS + 1)
    except OSError as exc:
        raise ConfigError(f"[content_credentials] trust_anchors: cannot read {path}: {exc.strerror or exc}") from exc
    if len(data) > MAX_ANCHORS:
        raise ConfigError(f"[content_credentials] trust_anchors: {path} is larger than {MAX_ANCHORS} bytes")
    text = data.decode("ascii", "replace")
    if "-----BEGIN CERTIFICATE-----" not in text:
        raise ConfigError(f"[content_credentials] trust_anchors: {path} holds no PEM certificate (-----BEGIN CERTIFICATE-----)")
    return text


def library_version() -> str:
    """``c2pa-python X (c2pa-rs Y)``, or why the library is not available."""
    try:
        import c2pa  # type: ignore[import-untyped]  # c2pa-python ships no type information

        return f"c2pa-python {metadata.version('c2pa-python')} (c2pa-rs {c2pa.sdk_version()})"
    except Exception as exc:  # a missing or broken native library is reported, not raised
        return f"c2pa-python unavailable: {exc}"


class CredentialReader:
    """Reads content credentials with one library context (settings, trust anchors), reused
    for every file of an ingest. ``trust_anchors``: PEM certificates of the signers' roots an
    agency trusts; without them a good signature is ``valid`` but not ``trusted``.
    ``isolate`` (the default): the library runs in a worker process of its own
    (``custody.media.c2pa_worker``), started on the first file that needs it; ``close()`` ends
    it. ``timeout``: a fixed deadline per file in seconds instead of one by the file's size."""

    def __init__(self, trust_anchors: str | None = None, isolate: bool = True, timeout: float | None = None) -> None:
        self.trust_anchors = trust_anchors
        self._context: Any = None
        self._unavailable: str | None = None
        self._lock = threading.Lock()  # one file at a time through the shared library context
        self.tool = library_version()
        self._worker: LibraryWorker | None = LibraryWorker(trust_anchors, self.tool, timeout=timeout) if isolate else None

    def _ready(self) -> Any:
        if self._context is None and self._unavailable is None:
            try:
                import c2pa

                settings = dict(_SETTINGS)
                if self.trust_anchors:
                    settings["trust"] = {"trust_anchors": self.trust_anchors}
                self._context = c2pa.Context(c2pa.Settings.from_dict(settings))
            except Exception as exc:  # the native library could not load or refused its settings
                self._unavailable = _text(f"the C2PA library could not be started: {exc}")
        return self._context

    def read(self, path: str) -> dict[str, Any]:
        """The ``content_credentials`` record of the file at ``path`` (never raises for it)."""
        with self._lock:
            return self._read_path(path)

    def close(self) -> None:
        """End the library's worker process, if one was started (from any thread)."""
        if self._worker is not None:
            self._worker.close()

    def _read_path(self, path: str) -> dict[str, Any]:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO put in its place never blocks
            with os.fdopen(fd, "rb") as handle:
                found = os.fstat(fd)
                if not stat.S_ISREG(found.st_mode):
                    return {"status": "error", "tool": self.tool, "finding": "not a regular file; not read"}
                os.set_blocking(fd, True)
                if bmff_manifest_box(handle) is False:
                    return {"status": "absent", "tool": self.tool}  # the library would read the same headers
                if self._worker is not None:
                    return self._worker.read(fd, found.st_size, _text(os.path.basename(path)))
                handle.seek(0)
                return self.read_handle(handle)
        except OSError as exc:
            return {"status": "error", "tool": self.tool,
                    "finding": _text(f"could not read the file for its content credentials: {exc.strerror or exc}")}

    def read_handle(self, handle: BinaryIO) -> dict[str, Any]:
        """The record of an open file, read by the library in this process."""
        context = self._ready()
        if context is None:
            return {"status": "error", "tool": self.tool, "finding": self._unavailable or "C2PA library unavailable"}
        return self._read(handle, context)

    def _read(self, handle: BinaryIO, context: Any) -> dict[str, Any]:
        import c2pa

        try:
            reader = c2pa.Reader.try_create(None, handle, None, context)
            if reader is None:
                return {"status": "absent", "tool": self.tool}
            with reader:
                text = reader.json()
                embedded = bool(reader.is_embedded())
        except c2pa.C2paError.NotSupported:
            return {"status": "unsupported", "tool": self.tool}
        except c2pa.C2paError as exc:
            return {"status": "error", "tool": self.tool,
                    "finding": _text(f"the C2PA library could not read the content credentials: {exc}")}
        if len(text) > MAX_JSON:
            return {"status": "error", "tool": self.tool,
                    "finding": f"the manifest store is larger than {MAX_JSON} bytes of JSON; not recorded"}
        try:
            store = json.loads(text)
        except ValueError as exc:
            return {"status": "error", "tool": self.tool, "finding": _text(f"the C2PA library printed unreadable JSON: {exc}")}
        record = summarize(store if isinstance(store, dict) else {})
        record["embedded"] = embedded
        record["tool"] = self.tool
        return record


def _signer(manifest: Mapping[str, Any]) -> dict[str, str]:
    info = manifest.get("signature_info")
    if not isinstance(info, dict):
        return {}
    names = (("common_name", "common_name"), ("issuer", "issuer"), ("serial", "cert_serial_number"),
             ("alg", "alg"), ("time", "time"))
    return {name: _text(info[key]) for name, key in names if info.get(key) not in (None, "")}


def _generator(manifest: Mapping[str, Any]) -> str | None:
    infos = manifest.get("claim_generator_info")
    if isinstance(infos, list) and infos:
        parts = []
        for info in infos[:5]:
            if isinstance(info, dict) and info.get("name"):
                version = info.get("version")
                parts.append(f"{info['name']}/{version}" if version else str(info["name"]))
        if parts:
            return _text(", ".join(parts))
    generator = manifest.get("claim_generator")
    return _text(generator) if generator else None


def _codes(results: Any, kind: str) -> list[str]:
    active = results.get("activeManifest") if isinstance(results, dict) else None
    entries = active.get(kind) if isinstance(active, dict) else None
    return [str(e.get("code")) for e in entries or () if isinstance(e, dict)]


def hard_binding(store: Mapping[str, Any]) -> str:
    """``mismatch`` when the library found the manifest's hash of the asset no longer matches
    the bytes, ``match`` when it checked and it matched, else ``not-checked``."""
    results = store.get("validation_results")
    failures = [c for c in _codes(results, "failure") if _HARD_BINDING.match(c)]
    statuses = [str(e.get("code")) for e in store.get("validation_status") or () if isinstance(e, dict)]
    if failures or any(_HARD_BINDING.match(c) and c.endswith("mismatch") for c in statuses):
        return "mismatch"
    if any(_HARD_BINDING.match(c) and c.endswith(".match") for c in _codes(results, "success")):
        return "match"
    return "not-checked"


def summarize(store: Mapping[str, Any]) -> dict[str, Any]:
    """The record of a manifest store as the library reports it (``Reader.json()``)."""
    found = store.get("manifests")
    manifests: dict[str, Any] = found if isinstance(found, dict) else {}
    label = store.get("active_manifest")
    active = manifests.get(label) if isinstance(label, str) else None
    active = active if isinstance(active, dict) else {}
    state = str(store.get("validation_state") or "")
    statuses = [e for e in store.get("validation_status") or () if isinstance(e, dict)]
    errors = [{"code": _text(e.get("code", "")), "explanation": _text(e.get("explanation", ""))} for e in statuses[:MAX_ERRORS]]
    binding = hard_binding(store)
    trusted = state == "Trusted"
    valid = state in ("Valid", "Trusted") and binding != "mismatch"
    record: dict[str, Any] = {
        "status": "valid" if valid else "invalid",
        "validation_state": _text(state) if state else "unknown",
        "trusted": trusted,
        "hard_binding": binding,
        "manifests": len(manifests),
        "signer": _signer(active),
        "errors": errors,
    }
    if len(statuses) > MAX_ERRORS:
        record["errors_omitted"] = len(statuses) - MAX_ERRORS
    if isinstance(label, str):
        record["active_manifest"] = _text(label)
    generator = _generator(active)
    if generator:
        record["claim_generator"] = generator
    if not valid:
        shown = ", ".join(e["code"] for e in errors if e["code"] != "signingCredential.untrusted") or state or "no state"
        what = "the bytes no longer match the hash it signed" if binding == "mismatch" else "it does not validate"
        record["finding"] = _text(f"content credentials (C2PA) INVALID: {what} ({shown})")
    return record


def credentials_line(record: Mapping[str, Any] | None) -> str:
    """One line for people: what the content credentials of a preserved file say."""
    if not record:
        return "not checked"
    status = record.get("status")
    if status == "absent":
        return "none (the file carries no C2PA manifest)"
    if status == "unsupported":
        return "not checked (the C2PA library cannot read this format)"
    if status == "error":
        return f"ERROR: {record.get('finding')}"
    signer = record.get("signer") or {}
    who = signer.get("common_name") or "unknown signer"
    if signer.get("issuer"):
        who += f" ({signer['issuer']})"
    trust = "trusted signer" if record.get("trusted") else "signer not on a trust list"
    head = "VALID" if status == "valid" else "INVALID"
    line = f"{head}: signed by {who}, {trust}; hard binding {record.get('hard_binding')}; made by {record.get('claim_generator', '?')}"
    if status != "valid":
        codes = ", ".join(e.get("code", "") for e in record.get("errors") or () if e.get("code") != "signingCredential.untrusted")
        line += f"; errors: {codes}"
    return line


def credentials_warning(record: Mapping[str, Any] | None) -> str | None:
    """The ingest report's warning for invalid or unreadable credentials; None otherwise."""
    if record and record.get("status") in ("invalid", "error"):
        return str(record.get("finding"))
    return None
