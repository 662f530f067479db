"""Prosecutor packages: ``export``, ``verify-package`` and ``receipt`` (keygen, import).

``verify-package`` and ``receipt keygen`` open no database, no store and no configuration.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from cli.context import emit_json, workspace
from cli.options import actor_option, json_option
from cli.render import echo

if TYPE_CHECKING:
    from custody.anchors.cosign import CosignerVerifier
    from custody.package.verification import PackageReport


@click.command("export")
@click.argument("refs", nargs=-1, metavar="[REF]...")
@click.option("--incident", "incident_id", required=True, metavar="ID", help="The incident whose evidence to export.")
@click.option("--out", "out", required=True, type=click.Path(path_type=Path),
              help="The package directory to create: a new path, or an existing empty directory.")
@click.option("--recipient", help="Who receives it, e.g. \"Cook County State's Attorney, Felony Review\".")
@click.option("--organization", help="Source-Organization in bag-info.txt (config: [commands.export] organization).")
@click.option("--no-contact-sheets", is_flag=True, help="Do not make contact sheets (no ffmpeg needed).")
@actor_option("Who exports", mentions_default=True)
@json_option("Print what was written and recorded as JSON.")
@click.pass_context
def export(ctx: click.Context, refs: tuple[str, ...], incident_id: str, out: Path, recipient: str | None,
           organization: str | None, no_contact_sheets: bool, actor: str | None, as_json: bool) -> None:
    """Write an incident's evidence as a package anyone can verify offline.

    The package is a BagIt 1.0 bag (RFC 8493): the original files in data/ (byte for byte,
    named by incident, camera and time), SHA-256 and SHA-512 manifests, a BLAKE3 list for
    b3sum -c, the incident record, the custody events of the files and the incident with a
    C2SP tlog-proof each, the signed checkpoint and the ledger's key, each video's packet list
    and contact sheet, report.html, a hash certification draft and README.txt saying how to
    check it all with stock tools. REF (a BLAKE3 prefix or a file) narrows it to some of the
    incident's linked objects. The export is recorded as an ``exported`` event per file
    (recipient, actor, the tag manifest's SHA-256).

    The last event of the package's checkpoint is its ``export-prepared`` event, listing every
    event and linked object a complete package holds; custody/seal.txt signs every file with the
    ledger's key; a package for a recipient who had one before carries the consistency proof
    from that package's checkpoint.

    Exits 2 for an unknown incident, an object not linked to it or an --out that exists and is
    not an empty directory; 3 if a
    stored object no longer has its recorded digests (nothing is written); 5 if ffmpeg is
    missing for contact sheets.

    \b
    Examples:
      custody export --incident 2026-1101-ICE-01 --out /media/usb/2026-1101-ICE-01 \\
          --recipient "Cook County State's Attorney, Felony Review"
      custody export --incident 2026-1101-ICE-01 --out pkg 1f0c3a9e 77ab0c12 --json
    """
    from cli.commands.media_cmd import media_tools
    from custody.package.export import export_package

    config = ctx.find_root().obj.get("config", {})
    result = export_package(
        workspace(ctx, actor), incident_id, out, refs=list(refs), recipient=recipient,
        organization=organization or config.get("organization"), tools=media_tools(),
        contact_sheets=not no_contact_sheets,
    )
    if as_json:
        emit_json(result.as_dict())
        return
    echo(f"package   {result.directory}")
    echo(f"incident  {result.incident}  (package {result.package_id})")
    for item in result.items:
        echo(f"  {item.file}  {item.size} bytes  BLAKE3 {item.blake3[:16]}  SHA-256 {item.sha256[:16]}")
    echo(f"events    {result.events}, proved against checkpoint {result.checkpoint['size']}")
    echo(f"complete  export-prepared event {result.prepared_seq}, the checkpoint's last, lists every event and "
               "linked object")
    echo(f"sealed    custody/seal.txt (SHA-256 {result.seal_sha256}), signed with the ledger's key")
    if result.previous_checkpoint is not None:
        echo(f"extends   the recipient's previous package (checkpoint {result.previous_checkpoint}): "
                   "custody/consistency.txt")
    for blake3 in result.excluded:
        echo(f"excluded  BLAKE3 {blake3[:16]}: linked to the incident, left out by the REFs given")
    echo(f"recorded  exported events {', '.join(map(str, result.exported_seqs))} "
               f"(tag manifest SHA-256 {result.tagmanifest_sha256})")
    for gone in result.disposed:
        echo(f"disposed  BLAKE3 {gone['blake3'][:16]}: disposed of on {gone['disposed_at']} (event {gone['seq']}); "
                   "not in the package, listed in report.html")


@click.command("verify-package")
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--trust-key", "trust_key", metavar="VKEY",
              help="The ledger's verifier key you expect (text name+keyid+base64, or a file holding it).")
@click.option("--trust-backup", "trust_backup", metavar="VKEY",
              help="The backup key of the --trust-key key (the 'backup' line of the agency's root.vkeys): "
                   "follows a rotation it signed, for a package without custody/root-backup.txt.")
@click.option("--receipt", "receipt_out", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write a receipt, signed with --signer-key, saying what was verified and when.")
@click.option("--signer-key", "signer_key", type=click.Path(dir_okay=False, path_type=Path),
              help="Your own signer key file (PRIVATE+KEY+...; see 'custody receipt keygen').")
@click.option("--trust-witness", "trust_witnesses", metavar="VKEY", multiple=True,
              help="A witness whose cosignature counts (its key name+keyid+base64, or a file holding it); repeatable.")
@click.option("--witness-quorum", type=click.IntRange(min=0), default=None,
              help="How many trusted witnesses must have cosigned the checkpoint (default: all given).")
@click.option("--tsa-ca", "tsa_ca", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="The CA certificate (PEM) of the time-stamping authority you trust: the RFC 3161 token is then required.")
@click.option("--previous", "previous", type=click.Path(file_okay=False, path_type=Path), metavar="OLD_DIR",
              help="An earlier package from the same ledger: check that this package's checkpoint extends its own.")
@json_option("Print the report as JSON.")
def verify_package_command(directory: Path, trust_key: str | None, trust_backup: str | None, receipt_out: Path | None,
                           signer_key: Path | None, trust_witnesses: tuple[str, ...], witness_quorum: int | None,
                           tsa_ca: Path | None, previous: Path | None, as_json: bool) -> None:
    """Check a package offline: every file, every custody claim.

    Needs no database, store or configuration. Checks bagit.txt, bag-info.txt and its
    Payload-Oxum; every payload file against manifest-sha256.txt, manifest-sha512.txt and
    blake3sums.txt (missing, added and altered files); every tag file against the tag
    manifests; the checkpoint's signature (against --trust-key when given, which must also be
    the package's key, or lead to it through the key rotations the package carries); each
    event's hash and its tlog-proof against the checkpoint; the cosignatures of the
    --trust-witness witnesses (at least --witness-quorum of them) and the RFC 3161 timestamp
    of the checkpoint (required, and checked against it, with --tsa-ca); and that
    each file's BLAKE3, SHA-256 and size are those its proved ingest event recorded, that a
    proved event links it to the incident, and that each packet list is the one recorded; the
    seal (every file as the ledger's key signed it: with --trust-key, any edited, added or
    removed file is named); completeness (every event and linked object that the package's
    export-prepared event lists is there); with --previous, that its checkpoint extends the
    earlier package's (RFC 9162 consistency proof). Links are never followed and special files
    never opened. Every finding is reported, naming its file. Exits 3 on any finding, 2 if
    DIRECTORY is not a directory or a key is unusable.

    \b
    Examples:
      custody verify-package /media/usb/2026-1101-ICE-01
      custody verify-package pkg --trust-key 'host/custody/1a2b3c4d+0badc0de+AQ...' --json
      custody verify-package pkg --trust-key vkey --receipt receipt.txt --signer-key sao.key
      custody verify-package pkg --trust-key vkey --trust-witness w1.vkey --trust-witness w2.vkey \\
          --witness-quorum 2 --tsa-ca tsa-ca.pem
      custody verify-package pkg-march --previous pkg-january --trust-key vkey
      custody verify-package pkg --trust-key first.vkey --trust-backup backup.vkey
    """
    from custody.errors import IntegrityFailure
    from custody.package.receipt import load_signer_key, make_receipt, write_receipt
    from custody.package.verify import AnchorPolicy, read_verifier_key, verify_package

    if (receipt_out is None) != (signer_key is None):
        raise click.UsageError("--receipt and --signer-key go together")
    signer = load_signer_key(signer_key) if signer_key is not None else None
    trusted = read_verifier_key(trust_key) if trust_key else None
    witnesses = [_witness_key(value) for value in trust_witnesses]
    quorum = len(witnesses) if witness_quorum is None else witness_quorum
    if quorum > len(witnesses):
        raise click.BadParameter(f"{quorum} is more than the {len(witnesses)} --trust-witness given", param_hint="--witness-quorum")
    if trust_backup and not trusted:
        raise click.UsageError("--trust-backup needs --trust-key (the key it is the backup of)")
    backup = read_verifier_key(trust_backup) if trust_backup else None
    report = verify_package(directory, trusted, AnchorPolicy(witnesses, quorum, tsa_ca, backup), previous)
    if as_json:
        emit_json(report.as_dict())
    else:
        _render_report(report)
    if receipt_out is not None and signer is not None:
        receipt = make_receipt(report, signer)
        write_receipt(receipt, signer, receipt_out)
        echo(f"receipt written to {receipt_out} (signed by {receipt.recipient_key})", err=True)
    if not report.ok:
        raise IntegrityFailure(report.findings).already_shown()


def _witness_key(value: str) -> CosignerVerifier:
    """A witness's cosigner key given as text or as a file holding it."""
    import os

    from custody.anchors.cosign import CosignatureError, CosignerVerifier

    text = value.strip()
    if os.path.isfile(value):
        try:
            text = Path(value).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise click.BadParameter(f"{value}: unreadable ({exc})", param_hint="--trust-witness") from exc
    try:
        return CosignerVerifier.from_text(text)
    except CosignatureError as exc:
        raise click.BadParameter(f"{value}: not a witness key: {exc}", param_hint="--trust-witness") from exc


def printable(text: str) -> str:
    """Text from a package as the terminal may show it: control characters escaped."""
    text = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in text)


def _render_report(report: PackageReport) -> None:
    echo(f"package   {printable(report.path)}")
    if not report.is_package:
        echo(f"custody: {printable(report.path)}: not a package: it holds none of a package's files "
                   "(bagit.txt, bag-info.txt, data/, custody/)", err=True)
        echo("NOT VERIFIED: not a package")
        return
    echo(f"incident  {printable(report.incident or 'not stated (bag-info.txt has no External-Identifier)')}  "
               f"(package {printable(report.package_id or 'not stated')})")
    for check in report.checks:
        state = "ok" if check.findings == 0 else f"FAILED ({check.findings})"
        echo(f"  {state:<12} {check.name}: {printable(check.detail)}")
    for finding in report.findings:
        echo(f"custody: {printable(finding.subject)}: {printable(finding.message)}", err=True)
    for blake3 in report.excluded:
        echo(f"note: object {printable(blake3)} is linked to the incident but the sender left it out of this "
                   "package (a selected export)", err=True)
    if report.ok:
        echo("verified: every file and every custody claim in the package checks out")
        if not report.key_trusted:
            echo(
                "note: checked against the package's own key; compare custody/verifier.key with the key the agency "
                "publishes, or pass --trust-key", err=True,
            )
    else:
        echo(f"NOT VERIFIED: {len(report.findings)} finding(s)")


@click.group("receipt")
def receipt() -> None:
    """Recipients' signed receipts of verified packages.

    \b
    Examples:
      custody receipt keygen sao-cook-county --out sao.key
      custody receipt import receipt.txt --trust-key sao.key.pub
    """


@receipt.command("keygen")
@click.argument("name")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The new signer key file (mode 0600); the verifier key goes to OUT.pub.")
def keygen(name: str, out: Path) -> None:
    """Make your own Ed25519 key for signing receipts; print its verifier key.

    NAME identifies you in the signature (letters, digits, '.', '-', '/'; no spaces). Give the
    printed verifier key to the sender so that they can check your receipts with --trust-key.
    Needs no database or configuration.

    \b
    Examples:
      custody receipt keygen sao-cook-county --out sao.key
    """
    from custody.package.receipt import generate_keypair

    echo(generate_keypair(name, out))


@receipt.command("import")
@click.argument("receipt_path", metavar="RECEIPT", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--trust-key", "trust_key", metavar="VKEY",
              help="The recipient's verifier key (text or file); without it the key named in the receipt is used.")
@actor_option("Who records it")
@json_option("Print what was recorded as JSON.")
@click.pass_context
def import_(ctx: click.Context, receipt_path: Path, trust_key: str | None, actor: str | None, as_json: bool) -> None:
    """Record a recipient's receipt in the ledger as a ``received-verified`` event.

    The signature is checked (against --trust-key, else against the key the receipt names,
    which proves it is intact but not who signed it); the receipt must be for a package this
    ledger exported and a checkpoint it signed. Importing the same receipt twice records it
    once. Exits 2 if it is not a receipt or not for a package from this ledger, 3 if the
    signature or the checkpoint does not match.

    \b
    Examples:
      custody receipt import receipt.txt
      custody receipt import receipt.txt --trust-key 'sao-cook-county+12345678+AQ...' --json
    """
    from custody.package.receipt import import_receipt
    from custody.package.verify import read_verifier_key

    trusted = read_verifier_key(trust_key) if trust_key else None
    done = import_receipt(workspace(ctx, actor), receipt_path, trusted)
    if as_json:
        emit_json(done.as_dict())
        return
    r = done.receipt
    verb = "already recorded as" if done.already else "recorded as"
    echo(f"{verb} event {done.seq}: {r.recipient_key.split('+')[0]} verified package {r.package_id} of incident "
               f"{r.incident} at {r.verified_at}: {r.result} ({r.findings} finding(s))")


COMMANDS = [export, verify_package_command, receipt]
