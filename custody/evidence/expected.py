"""Ingest against a manifest (``custody ingest --expect``): each file's digest, computed in the
one read, is compared with the one the previous system declared.

What each event records, under ``details.declared`` (``docs`` in DESIGN.md, "Ingest"):

- a listed file: ``result`` ``match`` or ``mismatch``, ``algorithm``, ``value`` (declared),
  ``computed``, ``path`` and ``line`` as listed, ``manifest`` (name, SHA-256, BLAKE3, format);
- a file under the command's paths that the manifest does not list: ``result`` ``not-listed``;
- the manifest itself (preserved in the same command): ``result`` ``manifest``, ``entries``,
  ``absent`` (the listed paths no file matched, at most ``ABSENT_RECORDED`` of them) and
  ``absent_count``.

A mismatch is preserved like any file (it is evidence) and is a finding; so is a listed file
that is absent. A file that is present but not listed is reported and recorded, not a finding.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any, Protocol, TypeVar

from custody.errors import Finding, FindingKind
from custody.evidence.hashing import Digests
from custody.evidence.manifests import Declared, Manifest
from custody.ledger.canonical import printable_path

ABSENT_RECORDED = 1000


class Outcome(Protocol):
    """What is read of an ingest's result (custody.evidence.ingest.IngestResult)."""

    @property
    def path(self) -> str: ...

    @property
    def status(self) -> str: ...

    @property
    def declared(self) -> dict[str, Any] | None: ...


O = TypeVar("O", bound=Outcome)


class Expectation:
    """The comparison state of one ingest command against one manifest."""

    def __init__(self, manifest: Manifest) -> None:
        self.manifest = manifest
        self._identity: tuple[int, int] | None = None
        try:
            st = os.stat(manifest.path)
            self._identity = (st.st_dev, st.st_ino)
        except OSError:
            pass
        self._verdicts: dict[str, dict[str, Any]] = {}
        self._listed: dict[str, Declared] = {}
        self.unmatched: list[Declared] = []

    @property
    def needs_md5(self) -> bool:
        return self.manifest.algorithm == "md5"

    def _relative(self, path: str) -> str | None:
        """``path`` relative to the manifest's root, as given or, failing that, with links
        resolved (a root or folder named through a symbolic link); None outside the root."""
        for base, full in ((self.manifest.root, os.path.abspath(path)),
                           (os.path.realpath(self.manifest.root), os.path.realpath(path))):
            relative = os.path.relpath(full, base)
            if not (relative == ".." or relative.startswith("../") or os.path.isabs(relative)):
                return relative.replace(os.sep, "/")
        return None

    def _is_manifest(self, path: str) -> bool:
        try:
            st = os.stat(path)
        except OSError:
            return False
        return (st.st_dev, st.st_ino) == self._identity

    def planned(self, paths: Iterable[str]) -> None:
        """Match the paths of the ingest's plan (files to read and files skipped) with the
        manifest's entries; what is listed and matched by none is absent."""
        seen: set[str] = set()
        for path in paths:
            relative = self._relative(path) if path else None
            if relative is not None and relative in self.manifest.entries:
                seen.add(relative)
                self._listed[path] = self.manifest.entries[relative]
        self.unmatched = [d for p, d in sorted(self.manifest.entries.items()) if p not in seen]

    def compare(self, path: str, digests: Digests) -> dict[str, Any]:
        """Compare a file's digests (from its one read) with its declared one; the verdict is
        kept for ``verdict`` and returned."""
        source = self.manifest.source()
        verdict: dict[str, Any]
        declared = self._listed.get(path)
        if self._is_manifest(path):  # one that lists itself ('sha256sum * > SHA256SUMS') cannot match itself
            absent = [printable_path(d.path) for d in self.unmatched]
            verdict = {
                "result": "manifest", "manifest": source, "algorithm": self.manifest.algorithm,
                "entries": len(self.manifest.entries), "absent": absent[:ABSENT_RECORDED], "absent_count": len(absent),
            }
            if digests.sha256 != self.manifest.sha256:
                verdict["result"] = "manifest-changed"
        elif declared is None:
            verdict = {"result": "not-listed", "manifest": source}
        else:
            algorithm = self.manifest.algorithm
            computed = digests.md5 if algorithm == "md5" else getattr(digests, algorithm)
            verdict = {
                "result": "match" if computed == declared.value else "mismatch",
                "algorithm": algorithm, "value": declared.value, "computed": computed,
                "path": printable_path(declared.path), "line": declared.line, "manifest": source,
            }
        self._verdicts[path] = verdict
        return verdict

    def declared_start(self, path: str) -> tuple[str, str] | None:
        """(where, value) of the recording start the manifest declares for ``path`` (a CSV's
        start column), as written; None when it declares none."""
        declared = self._listed.get(path)
        if declared is None or not declared.started:
            return None
        return f"{printable_path(self.manifest.name)} line {declared.line}", declared.started

    def verdict(self, path: str) -> dict[str, Any] | None:
        return self._verdicts.get(path)

    def absent(self) -> list[tuple[str, str]]:
        """(path, reason) of each listed path no file of the command matched."""
        name = printable_path(self.manifest.name)
        return [
            (
                printable_path(os.path.join(self.manifest.root, d.path)),
                f"listed in {name} line {d.line} ({self.manifest.algorithm.upper()} {d.value}) "
                "but not among the files ingested; find it, or ask the previous system why it is missing",
            )
            for d in self.unmatched
        ]


def findings_of(results: Iterable[O]) -> list[O]:
    """The results that are integrity findings: a declared digest that does not match, a
    listed file that is absent, a manifest that changed while it was ingested."""
    out = []
    for result in results:
        result_kind = (result.declared or {}).get("result")
        if result.status == "absent" or result_kind in ("mismatch", "manifest-changed"):
            out.append(result)
    return out


def as_findings(results: Iterable[Outcome]) -> list[Finding]:
    """``findings_of`` as integrity findings: ``mismatch``, ``manifest-changed`` or ``absent``."""
    return [
        Finding(FindingKind.ABSENT if r.status == "absent" else FindingKind(str((r.declared or {}).get("result"))),
                r.path, describe(r) or "listed in the manifest but not among the files ingested")
        for r in findings_of(results)
    ]


def describe(result: Outcome) -> str | None:
    """One line saying what the manifest said of a result, for people; None if nothing."""
    declared = result.declared or {}
    kind = declared.get("result")
    name = printable_path(str((declared.get("manifest") or {}).get("name", "the manifest")))
    if kind == "mismatch":
        return (
            f"finding: {declared['algorithm'].upper()} declared in {name} line {declared['line']} is "
            f"{declared['value']}, the file's is {declared['computed']}; preserved anyway and recorded as a mismatch"
        )
    if kind == "manifest-changed":
        return f"finding: the manifest changed between its parsing and its preservation; re-run the ingest"
    if kind == "not-listed":
        return f"not listed in {name}; preserved and recorded as not listed"
    return None


def expect(paths: list[str], manifest_path: str, **reading: Any) -> tuple[list[str], Expectation]:
    """Read the manifest (``custody.evidence.manifests.read_manifest`` with ``reading``) and
    the paths to ingest with it: the manifest is preserved in the same command, so it is added
    unless one of ``paths`` already holds it."""
    from custody.evidence.manifests import read_manifest

    manifest = read_manifest(manifest_path, **reading)
    expectation = Expectation(manifest)
    covered = False
    real = os.path.realpath(manifest.path)
    for given in paths:
        for base, target in ((os.path.abspath(given), manifest.path), (os.path.realpath(given), real)):
            if base == target or os.path.isdir(given) and os.path.commonpath([base, target]) == base:
                covered = True
    return (list(paths) if covered else [*paths, manifest_path]), expectation
