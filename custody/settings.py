"""Settings the core receives. The core never reads the environment; ``cli/`` builds these from
flags, ``CUSTODY_*`` variables, the config file and defaults, in that order of precedence."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from pathlib import Path

_USERINFO = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]*):(?P<secret>[^@\s/]*)@")
_SECRET_PARAMETER = re.compile(
    r"(?P<head>(?:^|[?&;\s])(?:password|passwd|pwd|pass|sslpassword|secret|secret_key|secret_access_key|"
    r"aws_secret_access_key|session_token|aws_session_token|token|access_token|api_key|apikey|sig|signature)"
    r"\s*=\s*)(?P<secret>'[^']*'|\"[^\"]*\"|[^&\s'\";]*)",
    re.IGNORECASE,
)
MASK = "***"


def mask_secrets(text: str) -> str:
    """``text`` with every password or token it carries replaced by ``***``: the password of a
    URL's ``user:password@`` and the value of ``password=``, ``token=``, ``secret=`` and the like
    (URL query parameters and libpq keywords). The one function every message, report and
    output line that may hold a database or store URL goes through."""
    text = _USERINFO.sub(lambda m: f"{m['head']}:{MASK}@", text)
    return _SECRET_PARAMETER.sub(lambda m: f"{m['head']}{MASK}", text)


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
    command: str = "custody"
    """The command line acting (``custody approve``), named in ``refused`` events."""

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


_KILL_AT = os.environ.get("CUSTODY_TEST_KILL_AT", "")


def crash_point(name: str) -> None:
    """A named step of a command where the crash-safety tests kill the process: with
    ``CUSTODY_TEST_KILL_AT`` naming this step (``NAME`` or ``NAME:N`` for its N-th passage), the
    process sends itself SIGKILL here, as a power cut would stop it. Unset (always, outside
    tests), nothing happens. The one place the core reads the environment, and only for this."""
    global _KILL_AT
    if not _KILL_AT:
        return
    wanted, _, count = _KILL_AT.partition(":")
    if wanted != name:
        return
    left = int(count or 1) - 1
    if left > 0:
        _KILL_AT = f"{wanted}:{left}"
        return
    import signal

    os.kill(os.getpid(), signal.SIGKILL)

