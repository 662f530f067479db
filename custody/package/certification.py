"""The draft hash certification (``hash-certification.txt``) for a qualified person to complete
and sign."""

from __future__ import annotations

import platform
import ssl
from importlib import metadata

from custody import TOOL
from custody.package.lockcheck import NOT_ENFORCED, lock_tested
from custody.package.model import ExportContext


def tool_versions(context: ExportContext) -> list[tuple[str, str]]:
    try:
        blake3_version = metadata.version("blake3")
    except metadata.PackageNotFoundError:
        blake3_version = "unknown"
    versions = [
        ("custody", TOOL),
        ("SHA-256, SHA-512", f"Python {platform.python_version()} hashlib, {ssl.OPENSSL_VERSION}"),
        ("BLAKE3-256", f"blake3 {blake3_version} (Python bindings of the reference implementation)"),
    ]
    if context.sheets_tool:
        versions.append(("contact sheets", context.sheets_tool))
    return versions


def lock_statement(worm: str | None, tested: str = "") -> str:
    """Where the retention lock of the stored copies (and checkpoints) is enforced, said
    exactly, as indented lines of paragraph 2; ``tested`` is what the last recorded store check
    found (custody.package.lockcheck)."""
    if tested.startswith(NOT_ENFORCED):
        text = tested
    elif worm == "server":
        text = ("Where the lock is enforced: by the storage server itself (S3 Object Lock). In COMPLIANCE "
                "mode, which this system uses for evidence and checkpoints, no user of the storage, its "
                "administrators included, can delete or overwrite a locked object or shorten its retention "
                "before the retention date. " + tested)
    elif worm == "program":
        text = ("Where the lock is enforced: by this program only. The store is a directory on a local disk; "
                "the program makes each file read-only and refuses to delete or shorten a retained object, "
                "but the disk itself enforces nothing, so an administrator of the machine could delete or "
                "alter the stored files. Such a change would be detected by comparing the files with the "
                "signed ledger, not prevented.")
    else:
        text = "Where the lock is enforced: not stated by the storage backend."
    lines, line = [], "   "
    for word in text.split():
        if len(line) + len(word) + 1 > 95:
            lines.append(line)
            line = "   "
        line += " " + word if line.strip() else word
    lines.append(line)
    return "\n".join(lines)


def render_certification(context: ExportContext) -> str:
    """A draft certification for a qualified person to complete and sign, in the spirit of
    Federal Rule of Evidence 902(14): what was hashed, how, with what, the values, and how
    the copies were made."""
    settings = context.workspace.settings
    store = context.workspace.store.describe()
    worm = context.workspace.store.capabilities.worm
    lock = lock_statement(worm, lock_tested(context.workspace))
    agency = context.organization if context.organization_given else "______________________________ [agency]"
    tools = "\n".join(f"     - {name}: {version}" for name, version in tool_versions(context))
    files = []
    for number, item in enumerate(context.items, 1):
        source = item.source
        files.append(
            f"  {number}. {item.file}\n"
            f"     original file name: {item.original_name}; camera: {item.camera or 'not recorded'}; "
            f"recorded at: {item.recorded_at or 'not recorded'}"
            f"{f' (from {item.recorded_at_source})' if item.recorded_at and item.recorded_at_source else ''}\n"
            f"     first preserved {item.ingested_at} by {item.ingested_by} (custody event {item.ingest_seq}), "
            f"read from {source.get('host')}:{source.get('path')}\n"
            f"     size:     {item.size} bytes\n"
            f"     SHA-256:  {item.sha256}\n"
            f"     SHA-512:  {item.sha512}\n"
            f"     BLAKE3:   {item.blake3}\n"
        )
    return f"""DRAFT - NOT SIGNED
CERTIFICATION OF DATA COPIED FROM AN ELECTRONIC STORAGE MEDIUM
(in the spirit of Federal Rule of Evidence 902(14) and the certification requirements of
Rule 902(11); counsel should adapt it to the rules of the court where it is offered.)

Incident: {context.incident}
Evidence package: {context.package_id} (prepared {context.created_text} by {settings.actor})

I, ______________________________ [name], declare:

1. I am employed by {agency} as ______________________________ [title].
   My duties include ______________________________ [e.g. the preservation of body-worn
   camera recordings and the operation of the agency's evidence preservation system]. I am
   qualified by ______________________________ [training and experience] to make this
   certification.

2. When each file listed in paragraph 5 was first preserved, the system read it once and
   computed its SHA-256 and BLAKE3-256 hash values from those bytes, stored the bytes in an
   object store ({store}) under a retention lock, and recorded the values, the time, the
   person and the source location as an event in an append-only, hash-chained custody ledger
   whose state is signed (Ed25519) in checkpoints kept in the same store under the same lock.
{lock}

3. On {context.created_text} the copies in this package were made by reading each preserved
   object from that store and writing the same bytes, unchanged and in full, to the file named
   in paragraph 5. While each copy was made, its SHA-256, SHA-512 and BLAKE3-256 hash values
   were computed from the bytes copied, and the SHA-256 and BLAKE3-256 values were compared
   with those recorded when the file was first preserved. They were identical for every file;
   a difference would have stopped the export.

4. Hash algorithms and software:
     - SHA-256 and SHA-512 (FIPS 180-4); BLAKE3-256 (https://github.com/BLAKE3-team/BLAKE3)
{tools}
   A hash value identifies a file's exact content: a copy whose hash values are identical to
   those below is a bit-for-bit duplicate of the original recording as it was preserved.

5. Files, their sizes and hash values:

{"".join(files)}
6. Anyone can recompute these values with widely available tools, without this software:
   in the package directory, 'sha256sum -c manifest-sha256.txt', 'sha512sum -c
   manifest-sha512.txt' and 'b3sum -c blake3sums.txt' (see README.txt). The custody events
   recording each file's preservation, and the signed checkpoint of the ledger proving them,
   are in the package's custody/ directory.

I declare under penalty of perjury under the laws of ______________________________
[e.g. the United States of America, 28 U.S.C. 1746; or, in Illinois, certification under
735 ILCS 5/1-109] that the foregoing is true and correct.

Executed on ____________________ [date] at ______________________________ [place].


______________________________ [signature]
______________________________ [printed name, title]
"""
