"""One way to resolve a reference to a preserved object (custody.evidence.references): every
command that needs one accepts a file or a digest prefix, and refuses bytes that were never
ingested with the same exit code and message."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from custody.errors import BadInput
from custody.evidence.references import resolve_preserved
from custody.home import open_workspace
from cli.context import settings_from
from tests.conftest import Custody

INCIDENT = "2026-1101-ICE-01"


@pytest.fixture
def preserved(initialized: Custody, tmp_path: Path) -> tuple[Custody, Path, str]:
    clip = tmp_path / "clip.bin"
    clip.write_bytes(b"body camera bytes " * 64)
    record = initialized.json("ingest", str(clip))[0]
    assert record["status"] == "recorded", record
    created = initialized("incident", "create", INCIDENT, "--occurred-at", "2026-11-01T14:03:00-06:00")
    assert created.exit_code == 0, created.output
    return initialized, clip, str(record["blake3"])


def _commands(ref: str) -> list[list[str]]:
    return [
        ["show", ref],
        ["link", ref, "--incident", INCIDENT],
        ["hold", "place", "H-1", "--authority", "court", "--reason", "review", ref],
        ["retention", "set", ref, "--category", "flagged", "--reason", "review"],
        ["ledger", "prove", ref],
        ["derive", ref, "--from", ref, "--tool", "ffmpeg", "--params", "-c copy"],
    ]


def test_bytes_never_ingested_are_refused_the_same_way_by_every_command(
    preserved: tuple[Custody, Path, str], tmp_path: Path
) -> None:
    custody, _, _ = preserved
    stranger = tmp_path / "never-ingested.bin"
    stranger.write_bytes(b"not evidence")
    for args in _commands(str(stranger)):
        result = custody(*args)
        assert result.exit_code == 2, (args, result.output)
        assert f"{stranger}: not a preserved object" in result.stderr, (args, result.stderr)
        assert "was ever ingested" in result.stderr, (args, result.stderr)


def test_a_file_and_a_digest_prefix_name_the_same_preserved_object(preserved: tuple[Custody, Path, str]) -> None:
    custody, clip, blake3 = preserved
    by_file = json.loads(custody("show", str(clip), "--json").stdout)
    by_prefix = json.loads(custody("show", blake3[:10], "--json").stdout)
    assert by_file["blake3"] == by_prefix["blake3"] == blake3
    proof = custody("ledger", "prove", blake3[:12])
    assert proof.exit_code == 0, proof.output
    linked = custody("link", str(clip), "--incident", INCIDENT)
    assert linked.exit_code == 0, linked.output
    assert f"linked {blake3[:16]} to {INCIDENT}" in linked.stdout


def test_resolve_preserved_gives_the_ledger_row_and_the_file(preserved: tuple[Custody, Path, str], tmp_path: Path) -> None:
    import click

    from cli.main import cli

    custody, clip, blake3 = preserved
    with click.Context(cli, obj={"home": custody.home, "config": {}, "db_url": None, "store_url": None}) as ctx:
        workspace = open_workspace(settings_from(ctx, "tech-0412"))
    found = resolve_preserved(workspace.ledger, str(clip))
    assert (found.blake3, found.path, found.row["blake3"]) == (blake3, str(clip), blake3)
    assert found.row["size"] == clip.stat().st_size
    by_prefix = resolve_preserved(workspace.ledger, blake3[:8])
    assert (by_prefix.blake3, by_prefix.path) == (blake3, None)
    (tmp_path / "other.bin").write_bytes(b"other")
    with pytest.raises(BadInput, match="not a preserved object"):
        resolve_preserved(workspace.ledger, str(tmp_path / "other.bin"))
