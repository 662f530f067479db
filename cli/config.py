"""The optional TOML configuration file in the data directory.

\b
    db = "postgresql+psycopg://custody@db/custody"
    store = "s3://evidence?endpoint_url=https://s3.example.org"
    actor = "tech-0412"
    [retention.categories.unflagged]
    days = 90
    [commands.ingest]
    note = "Dock 3"
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click


def load_config(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    import tomllib

    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise click.ClickException(f"cannot read the configuration file {path}: {exc}") from exc
