"""The data directory (the embedded default) and opening the ledger and store of a command."""

from __future__ import annotations

import errno
import os
import re
import secrets
import stat as stat_mod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TYPE_CHECKING
from pathlib import Path

from custody.errors import ConfigError
from custody.settings import Settings
from custody.workspace import LedgerHook, LedgerOpening, background_priority, open_ledger
from storage.base import BucketSetup, ObjectStore
from storage.url import open_store

if TYPE_CHECKING:
    from custody.anchors.keys import Rotation
    from custody.anchors.tiles import Publication
    from custody.anchors.witnessing import WitnessOutcome
    from custody.ledger.checkpoint import NoteSigner, Verifier
    from custody.ledger.database import Ledger
    from custody.ledger.seal import SignedCheckpoint

__all__ = ["InitReport", "LedgerOpening", "Workspace", "background_priority", "init_home", "open_workspace"]


@dataclass
class InitReport:
    home: Path
    database: str
    store: str
    key_created: bool
    database_created: bool
    verifier_key: str
    backup_key: str | None = None
    """The backup key's verifier key when ``init`` made one (custody.anchors.keys)."""


def key_name(settings: Settings) -> str:
    """The signing key's name, which is also the checkpoints' origin: a schema-less URL, as
    C2SP tlog-checkpoint recommends. ``[ledger] origin`` in the config file names it (e.g.
    ``evidence.example-city.gov/custody``); without it, ``custody.invalid/<random>`` (the
    reserved ``.invalid`` domain: stable, unique to this ledger, and claiming no one's name).
    The name is stored in the key file when the key is made and never recomputed, so a later
    change of the setting or of the host name leaves the ledger verifiable."""
    ledger = settings.config.get("ledger")
    origin = ledger.get("origin") if isinstance(ledger, Mapping) else None
    if origin is None:
        return f"custody.invalid/{secrets.token_hex(4)}"
    if not isinstance(origin, str) or not re.fullmatch(r"[A-Za-z0-9.-]+(/[A-Za-z0-9._~-]+)*", origin) \
            or "://" in origin:
        raise ConfigError(
            f"[ledger] origin {origin!r}: give a schema-less URL such as 'evidence.example-city.gov/custody' "
            "(letters, digits, '.', '-', '/'; no scheme, spaces or '+')"
        )
    return origin


def _write_exclusive(path: Path, content: str, mode: int) -> bool:
    """Create ``path`` with ``content`` unless it exists. Never overwrites. True if created."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())
    return True


def _private(path: Path, what: str) -> None:
    """Take away other users' access to ``path`` (group and other bits), or refuse, saying the
    command that fixes it. A path that does not exist is left alone."""
    try:
        mode = stat_mod.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return
    if not mode & 0o077:
        return
    try:
        os.chmod(path, mode & ~0o077)
    except OSError as exc:
        if exc.errno == errno.EROFS:
            return  # a read-only copy (an archive, a snapshot): nothing here can change it
        wanted = "700" if path.is_dir() else "600"
        raise ConfigError(
            f"{what} {path} is open to other users (mode {mode:04o}) and could not be made private "
            f"({exc.strerror}); run: chmod {wanted} {path}"
        ) from exc


def make_private(settings: Settings) -> None:
    """The data directory, and the SQLite ledger with its journal files, readable by their
    owner only: evidence and custody records are not for every local user."""
    _private(settings.home, "the data directory")
    database = sqlite_path(settings.db_url)
    if database is not None:
        for suffix in ("", "-wal", "-shm", "-journal"):
            _private(Path(f"{database}{suffix}"), "the ledger database")


def sqlite_path(db_url: str) -> Path | None:
    """The file of a ``sqlite:///`` ledger URL (None for other databases)."""
    if not db_url.startswith("sqlite:///"):
        return None
    return Path(db_url[len("sqlite:///"):].split("?", 1)[0])


def check_signing_key(path: Path) -> None:
    """Refuse (``ConfigError``, exit 5) a signing key that other users can read or write: who
    read it can sign checkpoints in this ledger's name."""
    try:
        mode = stat_mod.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return
    if mode & 0o077:
        raise ConfigError(
            f"the signing key {path} is readable by other users (mode {mode:04o}); anyone who read it "
            f"can sign checkpoints in this ledger's name. Make it private: chmod 600 {path} "
            "(and if others may have copied it, replace it by a recorded key rotation)"
        )


def missing_key_advice(settings: Settings) -> str:
    """What to do when the signing key is missing: restore it; never make a new one silently."""
    return (
        f"restore the key file from backup to {settings.key_path} (then chmod 600 it) and run the "
        "command again. Do not make a new key with 'custody init': checkpoints signed by the lost "
        "key would no longer verify; a replacement key is brought in only by a recorded key rotation"
    )


def _refuse_new_key_for_old_ledger(settings: Settings) -> None:
    """Before making a signing key: refuse when this data directory already has a ledger whose
    checkpoints (or published verifier key) belong to a key that is now missing."""
    from custody.ledger.database import Ledger

    signed: list[Mapping[str, Any]] = []
    events = 0
    ledger = Ledger(settings.db_url, settings.db_timeout)
    try:
        if _database_exists(ledger):
            signed = ledger.checkpoint_rows()
            events = ledger.head()[0]
    finally:
        ledger.close()
    published = settings.verifier_key_path.exists()
    if not signed and not events and not published:
        return
    what = []
    if signed:
        what.append(f"{len(signed)} checkpoint(s) signed with it")
    if events:
        what.append(f"{events} event(s)")
    if published:
        what.append(f"its verifier key {settings.verifier_key_path}")
    raise ConfigError(
        f"the signing key {settings.key_path} is missing, but this data directory already has a ledger "
        f"({ledger.where}) with {', '.join(what)}; no new key was made. " + missing_key_advice(settings)
    )


def init_home(
    settings: Settings, *, create_bucket: bool = False, remember_store: bool = False, hsm_uri: str | None = None
) -> InitReport:
    """Create the data directory, the local store (for file:// stores), the database schema and
    the Ed25519 signing key (mode 0600). Idempotent: nothing existing is overwritten.

    An S3 store's bucket must have Object Lock (``create_bucket`` creates one that has); with
    ``remember_store`` the store URL is written to the config file if it names none yet. With
    ``hsm_uri`` (a PKCS#11 URI) the signing key is an Ed25519 key generated in that HSM token
    (or already there), and ``signing.key`` holds only the URI (``custody.ledger.hsm``)."""
    from custody.ledger.checkpoint import generate_signer

    home = settings.home
    try:
        if not home.exists():
            home.mkdir(mode=0o700, parents=True)
        probe = home / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(
            f"the data directory {home} is not writable ({exc.strerror}); choose another with "
            "--home or CUSTODY_HOME, or fix its permissions"
        ) from exc
    store = open_store(settings.store_url)
    embedded = settings.store_url.startswith("file://")  # the data directory's own store: init makes it
    if isinstance(store, BucketSetup):
        store.ensure_bucket(create=create_bucket or embedded, default_retention_days=_unflagged_days(settings))
    if remember_store and not embedded:
        _remember_store(settings)
    key_created = False
    backup_key: str | None = None
    check_signing_key(settings.key_path)
    if hsm_uri is not None and not settings.key_path.exists():
        _refuse_new_key_for_old_ledger(settings)
        from custody.ledger.hsm import Pkcs11NoteSigner, with_note_name

        uri = with_note_name(hsm_uri, key_name(settings))
        hsm_signer = Pkcs11NoteSigner.open(uri, create=True)
        key_created = _write_exclusive(settings.key_path, uri + "\n", 0o600)
        if key_created:
            settings.verifier_key_path.unlink(missing_ok=True)
            _write_exclusive(settings.verifier_key_path, hsm_signer.verifier().to_text() + "\n", 0o644)
    if not settings.key_path.exists():
        _refuse_new_key_for_old_ledger(settings)
        signer, verifier = generate_signer(key_name(settings))
        key_created = _write_exclusive(settings.key_path, signer + "\n", 0o600)
        if key_created:
            settings.verifier_key_path.unlink(missing_ok=True)
            _write_exclusive(settings.verifier_key_path, verifier + "\n", 0o644)
            backup_key = _make_backup_key(settings, signer)
    from custody.ledger.database import Ledger

    ledger = Ledger(settings.db_url, settings.db_timeout)
    existed = _database_exists(ledger)
    ledger.create()
    make_private(settings)
    return InitReport(
        home=home,
        database=ledger.where,
        store=store.describe(),
        key_created=key_created,
        database_created=not existed,
        verifier_key=settings.verifier_key_path.read_text().strip(),
        backup_key=backup_key,
    )


def _make_backup_key(settings: Settings, signer_text: str) -> str:
    """A second key of the same name, ``backup.key`` (mode 0600, to be moved offline), able to
    rotate the signing key when it is lost; ``root.vkeys`` names both, and ``root-backup.note``
    is the first key's signed statement naming its backup (custody.anchors.keys)."""
    from custody.anchors.keys import ROOT_BACKUP_NOTE, sign_backup_nomination, write_root
    from custody.ledger.checkpoint import Signer, generate_signer

    signer = Signer.from_text(signer_text)
    verifier = signer.verifier().to_text()
    backup, backup_verifier = generate_signer(signer.name)
    home = settings.home
    (home / "backup.key").unlink(missing_ok=True)
    _write_exclusive(home / "backup.key", backup + "\n", 0o600)
    (home / "backup.vkey").write_text(backup_verifier + "\n")
    write_root(home / "root.vkeys", verifier, backup_verifier)
    (home / ROOT_BACKUP_NOTE).write_text(sign_backup_nomination(signer, Signer.from_text(backup)))
    return backup_verifier


def _unflagged_days(settings: Settings) -> int:
    """Whole days of the ``unflagged`` category: the bucket's default retention."""
    from custody.cases.retention import DEFAULT_CATEGORY, load_categories

    duration = load_categories(settings.config)[DEFAULT_CATEGORY].duration
    assert duration is not None
    return max(1, duration.days)


def _remember_store(settings: Settings) -> None:
    import tomllib

    path = settings.config_path
    existing = tomllib.loads(path.read_text()) if path.exists() else {}
    if "store" in existing:
        if existing["store"] != settings.store_url:
            raise ConfigError(
                f"{path} already names the store {existing['store']!r}; edit it to switch stores"
            )
        return
    line = "store = " + _toml_string(settings.store_url) + "\n"
    body = path.read_text() if path.exists() else ""
    path.write_text(line + body)


def _toml_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _database_exists(ledger: Ledger) -> bool:
    return ledger.has_schema()


class Workspace:
    """What a command works with: the settings, the ledger and the store (the wings take it as
    the protocol ``custody.workspace.Workspace``)."""

    def __init__(self, settings: Settings, ledger: Ledger | LedgerOpening, store: ObjectStore) -> None:
        self.settings = settings
        self.store = store
        self._ledger = ledger

    @property
    def ledger(self) -> Ledger:
        if isinstance(self._ledger, LedgerOpening):
            self._ledger = self._ledger.get()
        return self._ledger

    def ledger_or_opening(self) -> Ledger | LedgerOpening:
        """The ledger, or, while it is still being opened, the ``LedgerOpening`` (for work that
        can start before it is ready: see ``custody.evidence.ingest.Ingestor``)."""
        if isinstance(self._ledger, LedgerOpening) and self._ledger.ready():
            return self.ledger
        return self._ledger

    def signer(self) -> NoteSigner:
        from custody.ledger.seal import load_signer

        check_signing_key(self.settings.key_path)
        if not self.settings.key_path.exists():
            raise ConfigError(f"no signing key at {self.settings.key_path}: the signing key is missing; " + missing_key_advice(self.settings))
        return load_signer(self.settings.key_path)

    def verifier(self) -> Verifier:
        from custody.ledger.seal import load_verifier

        return load_verifier(self.settings.verifier_key_path, self.settings.key_path)

    def seal(self, *, force: bool = False) -> SignedCheckpoint | None:
        """Sign a checkpoint of every event so far and put it in WORM storage (see custody.ledger.seal)."""
        from custody.ledger.seal import seal

        signed = seal(self.ledger, self.store, self.signer(), force=force)
        if signed is not None:
            self.anchor(signed.size, signed.note)
        return signed

    def rotate_key(self, backup: Path | None = None) -> Rotation:
        """Rotate the ledger's signing key by an event signed by the current key, or, when it is
        lost, by the backup key in the file ``backup``; then seal with the new key (see
        custody.anchors.keys)."""
        from custody.anchors.keys import rotate
        from custody.ledger.seal import load_signer

        authority = load_signer(backup) if backup is not None else self.signer()
        rotation = rotate(
            self.ledger, self.settings.home, self.verifier(), authority,
            actor=self.settings.actor, role=self.settings.role,
            key_path=self.settings.key_path, verifier_path=self.settings.verifier_key_path,
            authorized_by="backup" if backup is not None else "key",
        )
        self.seal()
        return rotation

    def verifiers(self) -> list[Verifier]:
        """Every key the ledger's checkpoints were signed with, the root key first."""
        from custody.anchors.verification import ledger_keys

        return ledger_keys(self.ledger, self.settings, self.verifier())

    def publish_log(self, target: str) -> Publication:
        """Seal (or take the checkpoint that covers every event) and publish the log's hashes
        as C2SP tlog-tiles into ``target``: a directory, or ``s3://BUCKET/PREFIX`` (see
        custody.anchors.tiles and custody.anchors.public_s3)."""
        from custody.anchors.tiles import PublicLog, publish_checkpoint

        log: PublicLog | Path
        if target.startswith("s3://"):
            from custody.anchors.public_s3 import open_s3_log

            log = open_s3_log(target, self.settings.store_url)
        else:
            log = Path(target)
        signed = self.seal(force=True)
        if signed is None:
            from custody.errors import BadInput

            raise BadInput("the ledger has no events yet; there is nothing to publish")
        return publish_checkpoint(self.ledger, log, signed.size, signed.note)

    def anchor(self, size: int, note: str) -> list[WitnessOutcome]:
        """Have the configured witnesses cosign (and the time-stamping authority stamp) the
        checkpoint of ``size``, where not done yet (see custody.anchors). Never raises for a
        witness or authority that is down: it is a warning, and the next seal catches up.
        Without an ``[anchors]`` section nothing is imported (a seal stays as cheap as before)."""
        if not self.settings.config.get("anchors"):
            return []
        from custody.anchors.anchoring import anchor_checkpoint

        return anchor_checkpoint(self.ledger, self.store, self.settings, size, note)


def open_workspace(
    settings: Settings, *, need_store: bool = True, ledger_in_background: bool = False,
    ledger_hooks: Sequence[LedgerHook] = (),
) -> Workspace:
    """Open the ledger (checking its schema, then calling each of ``ledger_hooks`` with it) and
    the store; clear errors when not initialized. With ``ledger_in_background``, the ledger is
    opened on a thread (``LedgerOpening``): its errors surface when it is first used."""
    if settings.db_url.startswith("sqlite:///") and not Path(settings.db_url[len("sqlite:///"):]).exists():
        raise ConfigError(
            f"no custody ledger at {settings.db_url[len('sqlite:///'):]}; run 'custody init' "
            f"(data directory {settings.home})"
        )
    make_private(settings)
    ledger = LedgerOpening(settings, ledger_hooks) if ledger_in_background else open_ledger(settings, ledger_hooks)
    return Workspace(settings, ledger, open_store(settings.store_url))
