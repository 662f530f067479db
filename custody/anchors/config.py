"""The ``[anchors]`` section of the configuration file: which witnesses and which
time-stamping authority the log uses.

\b
    [anchors]
    witness_quorum = 2          # cosignatures each checkpoint should have (default: all witnesses)
    timeout = 5                 # seconds per request
    [[anchors.witnesses]]
    url = "https://witness.example.org/custody"      # the submission prefix
    key = "witness.example.org/w1+1a2b3c4d+BASE64"   # its cosigner verifier key (type 0x04)
    [anchors.tsa]
    url = "https://tsa.example.org/tsr"
    ca = "/etc/custody/tsa-ca.pem"                   # the CA certificate its tokens chain to
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from custody.anchors.cosign import CosignatureError, CosignerVerifier
from custody.errors import ConfigError


@dataclass(frozen=True)
class WitnessConfig:
    url: str
    verifier: CosignerVerifier

    @property
    def issuer(self) -> str:
        """How the ledger names this witness: its key name and key ID."""
        return f"{self.verifier.name}+{self.verifier.key_id:08x}"


@dataclass(frozen=True)
class TsaConfig:
    url: str
    ca: Path


@dataclass(frozen=True)
class AnchorConfig:
    witnesses: tuple[WitnessConfig, ...] = ()
    quorum: int = 0
    timeout: float = 5.0
    tsa: TsaConfig | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def configured(self) -> bool:
        return bool(self.witnesses) or self.tsa is not None


def _url(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.startswith(("http://", "https://")):
        raise ConfigError(f"{where}: 'url' must be an http:// or https:// URL")
    return value.rstrip("/")


def load_anchor_config(config: Mapping[str, Any]) -> AnchorConfig:
    """Parse ``config['anchors']``; ``ConfigError`` (exit 5) naming the bad entry."""
    section = config.get("anchors")
    if section is None:
        return AnchorConfig()
    if not isinstance(section, Mapping):
        raise ConfigError("config.toml: [anchors] must be a table")
    witnesses: list[WitnessConfig] = []
    for number, entry in enumerate(section.get("witnesses", []) or [], 1):
        where = f"config.toml: [[anchors.witnesses]] entry {number}"
        if not isinstance(entry, Mapping):
            raise ConfigError(f"{where} must be a table with url and key")
        try:
            verifier = CosignerVerifier.from_text(str(entry.get("key", "")))
        except CosignatureError as exc:
            raise ConfigError(f"{where}: 'key' is not a witness verifier key: {exc}") from exc
        witnesses.append(WitnessConfig(_url(entry.get("url"), where), verifier))
    if len({w.issuer for w in witnesses}) != len(witnesses):
        raise ConfigError("config.toml: [[anchors.witnesses]] names one witness key twice")
    quorum = section.get("witness_quorum", len(witnesses))
    if not isinstance(quorum, int) or isinstance(quorum, bool) or not 0 <= quorum <= len(witnesses):
        raise ConfigError(
            f"config.toml: anchors.witness_quorum must be a whole number from 0 to the {len(witnesses)} witnesses configured"
        )
    timeout = section.get("timeout", 5.0)
    if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or timeout <= 0:
        raise ConfigError("config.toml: anchors.timeout must be a positive number of seconds")
    tsa: TsaConfig | None = None
    if section.get("tsa") is not None:
        entry = section["tsa"]
        if not isinstance(entry, Mapping) or not isinstance(entry.get("ca"), str):
            raise ConfigError("config.toml: [anchors.tsa] needs url and ca (the path of its CA certificate)")
        tsa = TsaConfig(_url(entry.get("url"), "config.toml: [anchors.tsa]"), Path(entry["ca"]).expanduser())
    return AnchorConfig(tuple(witnesses), quorum, float(timeout), tsa)
