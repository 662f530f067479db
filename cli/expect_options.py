"""The ``--expect`` and ``--sidecar`` options of ``custody ingest``: what the previous system
declared (a manifest of digests) and the files that describe each recording (sidecars)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from cli.render import echo, printable

if TYPE_CHECKING:
    from custody.evidence.ingest import IngestResult

EXPECT_HELP = """\b
Manifests (--expect):
  sha256sum, b3sum and md5sum output (text or '*' binary mode, escaped names, --tag form), or a
  CSV with a header row. Paths are relative to the manifest's folder (--expect-root to change).
  The algorithm comes from --expect-algorithm, a tagged line, the file's name (SHA256SUMS,
  *.b3, *.md5) or the CSV digest column's header; 32 hex digits are MD5. A malformed manifest
  stops the command before anything is read (exit 2). Each file's digest is compared during its
  one read and the result recorded in its event; a mismatch is preserved anyway. Exits 3 if a
  declared digest does not match or a listed file is absent; files present but not listed are
  reported and recorded as such. The manifest itself is preserved in the same command.

\b
Sidecars (--sidecar PATTERN, repeatable):
  A file next to a recording named by the pattern ({stem}: the recording's name without its
  extension, {name}: its whole name) is preserved and linked to it ('sidecar-linked' event),
  e.g. --sidecar '{stem}.json' --sidecar '{stem}_audit.pdf'. 'custody show' lists them and
  packages carry them next to the recording."""


def expect_options(command: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--expect", "expect_path", metavar="MANIFEST",
                     help="Compare every file with the digest this manifest of the previous system declares."),
        click.option("--expect-algorithm", type=click.Choice(["sha256", "blake3", "md5"]),
                     help="The manifest's algorithm, when its name, tags or header do not say."),
        click.option("--expect-columns", metavar="path=HEADER,digest=HEADER",
                     help="The CSV columns holding the path and the digest (e.g. path=File,digest=SHA256)."),
        click.option("--expect-root", metavar="DIR", help="The folder the manifest's paths are relative to."),
        click.option("--expect-windows-paths", is_flag=True,
                     help="The manifest's paths separate folders with '\\' (a Windows export); drive letters are refused."),
        click.option("--sidecar", "sidecar_patterns", metavar="PATTERN", multiple=True,
                     help="Preserve the file named PATTERN next to each recording and link it as a sidecar."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def build(paths: list[str], given: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    """The paths to ingest and the ingest's ``expected`` and ``sidecars`` options."""
    from custody.evidence.sidecars import SidecarRules, parse_rules

    patterns = given.pop("sidecar_patterns")
    rules = {"sidecars": SidecarRules(parse_rules(patterns))} if patterns else {}
    paths, expected = _expectation(paths, given)
    return paths, {**rules, "expected": expected}


def _expectation(paths: list[str], given: dict[str, Any]) -> tuple[list[str], Any]:
    manifest = given.pop("expect_path")
    algorithm, columns, root = given.pop("expect_algorithm"), given.pop("expect_columns"), given.pop("expect_root")
    windows = given.pop("expect_windows_paths")
    if manifest is None:
        if algorithm or columns or root or windows:
            raise click.UsageError(
                "--expect-algorithm, --expect-columns, --expect-root and --expect-windows-paths need --expect MANIFEST"
            )
        return paths, None
    from custody.evidence.expected import expect
    from custody.evidence.manifests import parse_columns

    return expect(paths, manifest, algorithm=algorithm, columns=parse_columns(columns), root=root, windows_paths=windows)


def sidecar_links(extra: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Printable sidecar path -> its link, for the ingest's output."""
    rules = extra.get("sidecars")
    return dict(rules.linked) if rules is not None else {}


def report(results: list[IngestResult], links: dict[str, dict[str, Any]]) -> bool:
    """Print what the manifest said of each result, and each sidecar link (stderr); whether
    any result is a finding."""
    from custody.evidence.expected import describe, findings_of

    for result in results:
        line = describe(result)
        if line is not None:
            echo(f"custody: {printable(result.path)}: {line}", err=True)
        link = links.get(result.path)
        if link is not None:
            event = f"event {link['seq']}" if link["seq"] is not None else "linked before"
            echo(f"custody: {printable(result.path)}: sidecar of {printable(link['recording_path'])} "
                 f"(rule {printable(link['rule'])}, {event})", err=True)
    kinds = {(r.declared or {}).get("result") for r in results}
    if any(r.status == "absent" for r in results) and "not-listed" in kinds and not kinds & {"match", "mismatch"}:
        echo("custody: hint: no file matched any entry of the manifest; if its paths are relative to another "
             "folder than its own, give that folder with --expect-root", err=True)
    return bool(findings_of(results))
