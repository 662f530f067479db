from __future__ import annotations

from typing import Any

import click

from cli.context import emit_json, workspace
from cli.options import json_option
from cli.render import echo


@click.command("show")
@click.argument("ref")
@json_option()
@click.pass_context
def show(ctx: click.Context, ref: str, as_json: bool) -> None:
    """Show what is known of a preserved object.

    Digests, size, store key and version, the retention and legal hold the store reports now,
    the first ingest and every acquisition, the media probed at ingest, its sidecars (or the
    recordings it is a sidecar of), the parent it was derived from and its derivatives.

    \b
    Examples:
      custody show 1f0c3a9e
      custody show ./clip.mp4 --json
    """
    from custody.evidence.inspect import show_object
    from custody.package.report import declared_summary
    from custody.media.credentials import credentials_line
    from custody.media.recorded import recorded_line

    record = show_object(workspace(ctx), ref)
    if as_json:
        emit_json(record)
        return
    for name in ("blake3", "sha256", "size", "store", "store_key", "version", "store_status", "legal_hold"):
        echo(f"{name + ':':<14}{record[name]}")
    retention = record["retention"]
    echo(f"{'retention:':<14}{retention['mode'] + ' until ' + retention['until'] if retention else '-'}")
    echo(f"{'category:':<14}{record['category']}")
    echo(f"{'holds:':<14}{', '.join(record['holds']) or '-'}")
    echo(f"{'incidents:':<14}{', '.join(record['incidents']) or '-'}")
    first = record["first_ingest"]
    echo(f"{'first ingest:':<14}event {first['seq']} at {first['time']} by {first['actor']}")
    echo("acquisitions:")
    for acquisition in record["acquisitions"]:
        source = acquisition["source"] or {}
        echo(f"  event {acquisition['seq']:<6} {acquisition['time']}  {acquisition['actor']:<12} {source.get('path', '-')!r}")
        if acquisition.get("declared"):
            echo(f"    {declared_summary(acquisition['declared']).lstrip('; ')}")
    echo(f"{'media:':<14}{_media_line(record['media'])}")
    echo(f"{'recorded:':<14}{recorded_line(record.get('recorded'))}")
    echo(f"{'credentials:':<14}{credentials_line(record.get('content_credentials'))}")
    parent = record["parent"]
    echo(f"{'parent:':<14}{parent['parent'] + ' by ' + str(parent['tool']) + ' ' + repr(parent['params']) if parent else '-'}")
    echo(f"{'sidecars:':<14}{len(record['sidecars']) or '-'}")
    for sidecar in record["sidecars"]:
        how = f"rule {sidecar['rule']}" if sidecar.get("rule") else str(sidecar.get("how"))
        echo(f"  {sidecar['blake3']}  {sidecar['name']!r} ({sidecar['size']} bytes), event {sidecar['seq']} by {sidecar['actor']}, {how}")
    for recording in record["sidecar_of"]:
        echo(f"{'sidecar of:':<14}{recording['blake3']} (event {recording['seq']})")
    echo(f"{'derivatives:':<14}{len(record['derivatives']) or '-'}")
    for child in record["derivatives"]:
        echo(f"  {child['blake3']}  event {child['seq']} at {child['time']} by {child['tool']} {child['params']!r}")


def _media_line(media: Any) -> str:
    if not media:
        return "-"
    if not media.get("probed"):
        return f"not probed ({media.get('reason')})"
    if media.get("kind") not in ("video", "audio"):
        return f"{media.get('kind')}: {media.get('probe_error') or media.get('reason') or media.get('container')}"
    parts = [media.get("container", "?")]
    if "duration_us" in media:
        parts.append(f"{media['duration_us'] / 1e6:.3f} s")
    for stream in media.get("streams", []):
        if stream.get("type") == "video":
            parts.append(f"{stream.get('codec')} {stream.get('width')}x{stream.get('height')} {stream.get('frame_rate', '')}".strip())
        elif stream.get("type") == "audio":
            parts.append(f"{stream.get('codec')} {stream.get('sample_rate')} Hz")
    device = media.get("device") or {}
    if device:
        parts.append(" ".join(device[k] for k in ("make", "model", "serial") if k in device))
    return ", ".join(parts)


COMMANDS = [show]
