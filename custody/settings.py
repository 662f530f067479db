"""Settings the core receives. The core never reads the environment; ``cli/`` builds these from
flags, ``CUSTODY_*`` variables, the config file and defaults, in that order of precedence."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Callable
from pathlib import Path

def default_home() -> Path:
    """The per-user data directory: ``$XDG_DATA_HOME/custody`` or ``~/.local/share/custody``."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "custody"


@dataclass(frozen=True)
class Settings:
    home: Path
    db_url: str
    store_url: str
    actor: str
    role: str = "technician"
    db_timeout: float = 30.0
    config: Mapping[str, Any] = field(default_factory=dict)
    """The configuration file's contents (retention categories and other agency data)."""
    key: Path | None = None
    """The acting person's enrolled SSH key (a private key file, or the .pub of a key in
    ssh-agent or on a token); None for an unsigned station (``custody.actors.identity``)."""
    ledger_hooks: tuple[Callable[[Any], None], ...] = ()
    """Called with the ledger once it is open (e.g. to install an append policy)."""

    @property
    def key_path(self) -> Path:
        return self.home / "signing.key"

    @property
    def verifier_key_path(self) -> Path:
        return self.home / "verifier.key"

    @property
    def config_path(self) -> Path:
        return self.home / "config.toml"

    @staticmethod
    def default_db_url(home: Path) -> str:
        return f"sqlite:///{home / 'custody.db'}"

    @staticmethod
    def default_store_url(home: Path) -> str:
        return f"file://{home / 'store'}"
