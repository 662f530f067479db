"""Media commands: ``clip verify``, ``media sheet`` and ``derive``.

ffprobe and ffmpeg are taken from PATH, or from ``CUSTODY_FFPROBE`` / ``CUSTODY_FFMPEG``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import click

from cli.context import emit_json, workspace
from cli.options import actor_option, json_option
from cli.render import echo

if TYPE_CHECKING:
    from custody.media.inspection import MediaInspector
    from custody.media.tools import MediaTools
    from custody.media.clips import ClipReport


def media_tools() -> MediaTools:
    """The ffmpeg/ffprobe programs: ``CUSTODY_FFMPEG`` / ``CUSTODY_FFPROBE``, else PATH. Ingest
    demuxes in this process with PyAV (no ffprobe start per file) unless ``CUSTODY_FFPROBE``
    names an ffprobe to use or ``CUSTODY_DEMUXER=ffprobe``."""
    from custody.media.inprocess import available
    from custody.media.tools import MediaTools

    named = os.environ.get("CUSTODY_FFPROBE")
    wanted = (os.environ.get("CUSTODY_DEMUXER") or "pyav").lower()
    return MediaTools(
        ffmpeg=os.environ.get("CUSTODY_FFMPEG") or "ffmpeg",
        ffprobe=named or "ffprobe",
        in_process=not named and wanted != "ffprobe" and available(),
    )


def ingest_inspector(config: Mapping[str, Any] | None = None) -> MediaInspector:
    """The inspector ``custody ingest`` runs on every file (custody.media.inspection.MediaInspector);
    ``config`` (config.toml) may name the C2PA trust anchors."""
    from custody.media.credentials import CredentialReader, trust_anchors_from
    from custody.media.inspection import MediaInspector

    return MediaInspector(media_tools(), CredentialReader(trust_anchors_from(config or {})))


@click.group("clip")
def clip() -> None:
    """Check clips (excerpts played in court) against preserved originals.

    \b
    Examples:
      custody clip verify excerpt.mp4 --against 1f0c3a9e
      custody clip verify excerpt.mp4 --against BWC-0042.mp4 --json
    """


@clip.command("verify")
@click.argument("clip_path", metavar="CLIP", type=click.Path(dir_okay=False))
@click.option("--against", "ref", required=True, metavar="REF",
              help="The preserved original: a BLAKE3 prefix (8+ hex) or a file whose bytes are preserved.")
@actor_option("Who checks", mentions_default=True)
@json_option("Print the report as JSON.")
@click.pass_context
def clip_verify(ctx: click.Context, clip_path: str, ref: str, actor: str | None, as_json: bool) -> None:
    """Say whether CLIP is, bit for bit, a stream-copied excerpt of a preserved original.

    Every packet of every stream of CLIP is hashed (SHA-256, without decoding) and looked up in
    the original's packet list recorded at ingest (its SHA-256 is checked first). CLIP is
    derived bit for bit when each of its streams is one contiguous run of an original stream's
    packets; the report gives the time range of the original it covers. A re-encoded clip, or
    one that drops, changes, inserts or reorders packets, is not, and every place where it
    departs from the original is named. The check is recorded as a ``verified`` event.

    Exits 0 when derived, 3 when not, 5 when ffprobe is missing.

    \b
    Examples:
      custody clip verify excerpt.mp4 --against 1f0c3a9e
      custody clip verify court/exhibit-12.mov --against ./BWC-0042.mp4 --json
    """
    from custody.errors import IntegrityFailure
    from custody.media.preserved import verify_clip_against

    report = verify_clip_against(workspace(ctx, actor), clip_path, ref, media_tools())
    if as_json:
        emit_json(report.as_dict())
    else:
        _render_clip(report)
    if not report.derived:
        raise IntegrityFailure(report.findings).already_shown()


def _render_clip(report: ClipReport) -> None:
    from custody.media.tools import format_time

    original = (report.original or "")[:16]
    if report.derived:
        covering = "" if report.start_us is None or report.end_us is None else \
            f", covering {format_time(report.start_us)}-{format_time(report.end_us)} of the original"
        echo(f"derived bit for bit: {report.clip} is a stream-copied excerpt of {original}{covering}")
    else:
        echo(f"NOT derived bit for bit: {report.clip} is not a stream-copied excerpt of {original}")
    for stream in report.streams:
        if stream.original_stream is None:
            echo(f"  clip stream {stream.clip_stream} ({stream.media_type} {stream.codec}): "
                       f"{stream.packets} packets, none from the original")
            continue
        span = ""
        if stream.start_us is not None and stream.end_us is not None:
            span = f", {format_time(stream.start_us)}-{format_time(stream.end_us)}"
        echo(
            f"  clip stream {stream.clip_stream} ({stream.media_type} {stream.codec}): {stream.matched} of "
            f"{stream.packets} packets found in original stream {stream.original_stream}, spanning its packets "
            f"{stream.first}-{stream.last}{span}"
        )
    if report.original_streams_not_in_clip:
        echo(f"  original streams not in the clip: {', '.join(map(str, report.original_streams_not_in_clip))}")
    echo(f"  packet list: {report.packet_list_source}")
    for finding in report.findings:
        echo(f"custody: {finding.kind}: {finding.message}", err=True)
    if not report.derived:
        echo(f"custody: {report.clip}: not derived bit for bit from {report.original}", err=True)


@click.group("media")
def media() -> None:
    """Look at preserved videos.

    \b
    Examples:
      custody media sheet 1f0c3a9e --out BWC-0042-sheet.png
    """


@media.command("sheet")
@click.argument("ref")
@click.option("--out", "out_png", required=True, type=click.Path(dir_okay=False, writable=True),
              help="The PNG to write (replaced if it exists).")
@click.option("--tiles", default=12, show_default=True, type=click.IntRange(1, 400), help="Number of frames.")
@click.option("--columns", default=4, show_default=True, type=click.IntRange(1, 100), help="Frames per row.")
@click.option("--width", default=320, show_default=True, type=click.IntRange(16, 4096), help="Width of a frame in pixels.")
@actor_option("Who looks", mentions_default=True)
@json_option("Print what was written as JSON.")
@click.pass_context
def sheet(ctx: click.Context, ref: str, out_png: str, tiles: int, columns: int, width: int, actor: str | None,
          as_json: bool) -> None:
    """Write a contact sheet of a preserved video: a grid of frames with their times.

    The frames are taken from the stored bytes at evenly spaced times and labelled with their
    time from the start of the video; the PNG also lists the times in its text chunks. Recorded
    as a ``viewed`` event. Exits 2 if REF is not a video, 5 if ffmpeg is missing.

    \b
    Examples:
      custody media sheet 1f0c3a9e --out BWC-0042-sheet.png
      custody media sheet ./BWC-0042.mp4 --out sheet.png --tiles 24 --columns 6 --width 240
    """
    from custody.media.preserved import sheet_of

    made = sheet_of(workspace(ctx, actor), ref, out_png, tiles=tiles, columns=columns, width=width,
                    tools=media_tools())
    if as_json:
        emit_json(made.as_dict())
        return
    echo(f"{made.path}: {made.width}x{made.height} PNG, {len(made.times_us)} frames")
    if not made.labelled:
        echo("custody: warning: no font for drawtext; the times are only in the PNG's text chunks", err=True)


@click.command("derive")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--from", "ref", required=True, metavar="REF",
              help="The preserved parent: a BLAKE3 prefix (8+ hex) or a file whose bytes are preserved.")
@click.option("--tool", required=True, help="The program that made FILE, with its version.")
@click.option("--params", required=True, help="The parameters (command line) it was run with.")
@click.option("--note", help="A note recorded with the ingest event.")
@actor_option("Who ingests", mentions_default=True)
@json_option("Print the ingest record as JSON.")
@click.pass_context
def derive(ctx: click.Context, file: str, ref: str, tool: str, params: str, note: str | None, actor: str | None,
           as_json: bool) -> None:
    """Preserve a derivative (a redacted or transcoded copy) and record what it comes from.

    FILE is ingested like ``custody ingest`` does (hashed, stored under retention, probed);
    its ingest event names the parent (BLAKE3 and SHA-256), the tool and the parameters, and
    ``custody show`` lists it among the parent's derivatives. Exits 2 if REF is not preserved
    or FILE's bytes already are (the acquisition is then recorded, but not as a derivative).

    \b
    Examples:
      custody derive BWC-0042-redacted.mp4 --from 1f0c3a9e --tool "ffmpeg 5.1.9" --params "-vf boxblur=10 -c:a copy"
      custody derive exhibit.mp4 --from BWC-0042.mp4 --tool "Axon Redaction Studio 4.2" --params "faces, plates" --json
    """
    from custody.media.derivation import derive as derive_object

    ws = workspace(ctx, actor)
    derived = derive_object(ws, file, ref, tool=tool, params=params, note=note, inspector=ingest_inspector(ws.settings.config))
    result = derived.result
    if as_json:
        emit_json(derived.as_dict())
    else:
        echo(f"{result.status:<15} {(result.blake3 or '-')[:16]:<16} {result.path}")
        echo(f"derived from    {derived.derived_from['parent'][:16]:<16} by {derived.derived_from['tool']}")
    if result.warning:
        echo(f"custody: warning: {result.path}: {result.warning}", err=True)


COMMANDS = [clip, media, derive]
