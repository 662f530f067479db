"""The ledger's signing keys over time: rotation by an event signed by the old key, recovery
with the backup key made at ``custody init``, and the chain of keys verification accepts.

Trust starts at the root keys, written at ``init`` to ``root.vkeys`` in the data directory and
given to recipients: the first signing key and its backup key (``backup.key``, to be moved
offline; only ever used to rotate when the signing key is lost). ``custody ledger rotate-key``
appends a ``key-rotated`` event whose details hold a signed note::

    custody key rotation/v1
    log <origin>
    old <the key being replaced>
    new <the new key>
    backup <the new backup key>

signed by the current key or its backup (the authority) and by the new key (proof of
possession). Every checkpoint of a tree that includes the event is signed by the new key; a
checkpoint is accepted only when signed by the key in force at its size. A key that is lost is
never silently replaced: without the old key or the backup there is no rotation.

So that a recipient who pinned only the first key can follow a recovery by its backup, ``init``
also writes ``root-backup.note``: a note signed by the first key and by the backup key::

    custody key backup/v1
    log <origin>
    key <the first key>
    backup <its backup key>

Packages carry it (``custody/root-backup.txt``) beside the rotations.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from custody.errors import ConfigError, Finding, FindingKind, PolicyRefused
from custody.ledger import checkpoint as notes

if TYPE_CHECKING:
    from custody.ledger.database import Ledger

ROTATION_HEADER = "custody key rotation/v1"
ROTATED = "key-rotated"
BACKUP_HEADER = "custody key backup/v1"
ROOT_BACKUP_NOTE = "root-backup.note"


@dataclass(frozen=True)
class KeyPeriod:
    """``verifier`` signs the checkpoints of sizes from ``from_size`` on (until the next period)."""

    from_size: int
    verifier: notes.Verifier
    backup: notes.Verifier | None


def write_root(path: Path, key: str, backup: str | None) -> None:
    lines = [f"key {key}"] + ([f"backup {backup}"] if backup else [])
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def read_root(path: Path, fallback: notes.Verifier) -> tuple[notes.Verifier, notes.Verifier | None]:
    """The root keys (``root.vkeys``); without that file, ``fallback`` and no backup."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return fallback, None
    found: dict[str, notes.Verifier] = {}
    for line in lines:
        kind, _, text = line.strip().partition(" ")
        if kind in ("key", "backup"):
            try:
                found[kind] = notes.Verifier.from_text(text)
            except notes.TlogError as exc:
                raise ConfigError(f"{path}: the {kind} line is not a verifier key: {exc}") from exc
    if "key" not in found:
        raise ConfigError(f"{path} names no root key")
    return found["key"], found.get("backup")


def rotation_text(origin: str, old: notes.Verifier, new: notes.Verifier, backup: notes.Verifier) -> str:
    return (
        f"{ROTATION_HEADER}\nlog {origin}\nold {old.to_text()}\nnew {new.to_text()}\nbackup {backup.to_text()}\n"
    )


def _fields(text: str, header: str = ROTATION_HEADER, needed: tuple[str, ...] = ("log", "old", "new", "backup")) -> dict[str, str]:
    lines = text.rstrip("\n").split("\n")
    if not lines or lines[0] != header:
        raise ValueError(f"not a '{header}' statement")
    out: dict[str, str] = {}
    for line in lines[1:]:
        key, _, value = line.partition(" ")
        out[key] = value
    for name in needed:
        if name not in out:
            raise ValueError(f"the statement has no {name} line")
    return out


def rotation_fields(text: str) -> dict[str, str]:
    """The lines of a rotation statement (``ValueError`` when it is not one)."""
    return _fields(text)


def sign_backup_nomination(key: notes.NoteSigner, backup: notes.NoteSigner) -> str:
    """The first key's statement naming its backup key, signed by both."""
    text = f"{BACKUP_HEADER}\nlog {key.name}\nkey {key.verifier().to_text()}\nbackup {backup.verifier().to_text()}\n"
    return notes.sign_note(text, [key, backup])


def open_backup_nomination(note: str, key: notes.Verifier) -> notes.Verifier:
    """The backup key that ``key`` named in ``note``; ``ValueError`` or ``notes.TlogError`` when
    the note is not such a statement signed by ``key`` and by the backup it names."""
    fields = _fields(notes.open_note(note, [key]).text, BACKUP_HEADER, ("log", "key", "backup"))
    if fields["key"] != key.to_text() or fields["log"] != key.name:
        raise ValueError("it names another key or log than the trusted key")
    backup = notes.Verifier.from_text(fields["backup"])
    if backup.name != key.name:
        raise ValueError("the backup key has another name")
    notes.open_note(note, [backup])
    return backup


def key_chain(ledger: Ledger, root: notes.Verifier, backup: notes.Verifier | None) -> tuple[list[KeyPeriod], list[Finding]]:
    """Walk the ``key-rotated`` events from the root keys. A rotation that is not signed by the
    key (or backup) in force and by its new key is a finding and is not followed."""
    chain = [KeyPeriod(0, root, backup)]
    findings: list[Finding] = []
    for event in ledger.events(actions=[ROTATED]):
        current = chain[-1]
        where = f"event {event.seq}"
        note = str(event.details.get("note", ""))
        try:
            authorities = [current.verifier] + ([current.backup] if current.backup else [])
            opened = notes.open_note(note, authorities)
            fields = _fields(opened.text)
            new = notes.Verifier.from_text(fields["new"])
            new_backup = notes.Verifier.from_text(fields["backup"])
            notes.open_note(note, [new])
            if fields["old"] != current.verifier.to_text() or fields["log"] != root.name or new.name != root.name:
                raise ValueError("the statement names another key or log than the one in force")
        except (notes.TlogError, ValueError) as exc:
            findings.append(Finding(FindingKind.LEDGER_CORRUPT, where, f"key rotation not accepted: {exc}"))
            continue
        chain.append(KeyPeriod(event.seq + 1, new, new_backup))
    return chain, findings


def key_for(chain: list[KeyPeriod], size: int) -> notes.Verifier:
    return [period for period in chain if period.from_size <= size][-1].verifier


def check_checkpoint_keys(chain: list[KeyPeriod], rows: Sequence[Mapping[str, Any]]) -> list[Finding]:
    """Each recorded checkpoint must be signed by the key in force at its size."""
    findings = []
    for row in rows:
        expected = key_for(chain, row["size"])
        try:
            notes.open_checkpoint(row["note"], [expected])
        except notes.TlogError:
            findings.append(
                Finding(
                    FindingKind.LEDGER_CORRUPT, f"checkpoint {row['size']}",
                    f"not signed by the key in force at that size ({expected.name}+{expected.key_id:08x})",
                )
            )
    return findings


@dataclass(frozen=True)
class Rotation:
    seq: int
    old_key: str
    new_key: str
    backup_key: str
    authorized_by: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "old_key": self.old_key,
            "new_key": self.new_key,
            "backup_key": self.backup_key,
            "authorized_by": self.authorized_by,
        }


def _write_secret(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def rotate(
    ledger: Ledger, home: Path, current: notes.Verifier, authority: notes.NoteSigner, *, actor: str, role: str,
    key_path: Path, verifier_path: Path, authorized_by: str,
) -> Rotation:
    """Append the rotation event signed by ``authority`` (the current key or its backup) and a
    new key, then make the new key and a new backup the ledger's keys. The old signing key is
    kept as ``signing.key.retired-<keyid>``."""
    root_path = home / "root.vkeys"
    backup_path = home / "backup.key"
    if not root_path.exists():
        previous_backup = None
        if (home / "backup.vkey").exists():
            previous_backup = (home / "backup.vkey").read_text().strip()
        write_root(root_path, current.to_text(), previous_backup)
    root, root_backup = read_root(root_path, current)
    chain, findings = key_chain(ledger, root, root_backup)
    if findings:
        raise PolicyRefused(f"the ledger's key chain does not verify ({findings[0].message}); run 'custody ledger verify'")
    in_force = chain[-1]
    allowed = [in_force.verifier.key_id] + ([in_force.backup.key_id] if in_force.backup else [])
    if authority.key_id not in allowed or authority.name != in_force.verifier.name:
        raise PolicyRefused(
            f"the key {authority.name}+{authority.key_id:08x} is neither the ledger's key in force nor its backup; "
            "a rotation must be signed by one of them"
        )
    new_text, new_vkey = notes.generate_signer(in_force.verifier.name)
    backup_text, backup_vkey = notes.generate_signer(in_force.verifier.name)
    new = notes.Signer.from_text(new_text)
    statement = rotation_text(in_force.verifier.name, in_force.verifier, new.verifier(), notes.Verifier.from_text(backup_vkey))
    note = notes.sign_note(statement, [authority, new])
    _write_secret(home / "signing.key.next", new_text)
    _write_secret(home / "backup.key.next", backup_text)
    event = ledger.append(
        ROTATED, actor=actor, role=role,
        details={"note": note, "new_key": new_vkey, "old_key": in_force.verifier.to_text(), "authorized_by": authorized_by},
    )
    if key_path.exists():
        os.replace(key_path, home / f"signing.key.retired-{in_force.verifier.key_id:08x}")
    os.replace(home / "signing.key.next", key_path)
    verifier_path.write_text(new_vkey + "\n", encoding="utf-8")
    if backup_path.exists():
        os.replace(backup_path, home / f"backup.key.retired-{in_force.backup.key_id if in_force.backup else 0:08x}")
    os.replace(home / "backup.key.next", backup_path)
    (home / "backup.vkey").write_text(backup_vkey + "\n", encoding="utf-8")
    return Rotation(event.seq, in_force.verifier.to_text(), new_vkey, backup_vkey, authorized_by)
