"""Ed25519 keys in an HSM, through PKCS#11 (``python-pkcs11``): the ledger's checkpoint signing
key, and a person's event-signing key (``custody.ledger.signatures.Pkcs11SshSigner``).

A key is named by an RFC 7512 PKCS#11 URI, e.g.::

    pkcs11:token=custody-ledger;object=ledger?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/custody/hsm.pin&x-note-name=host/custody/1a2b3c4d

``module-path`` is the PKCS#11 library, ``pin-source`` a file holding the user PIN (or
``pin-value`` the PIN itself), and, for the ledger's key, ``x-note-name`` the key's name in the
C2SP signed notes (the data directory's ``signing.key`` then holds only this URI). The key is an
Ed25519 key pair (CKK_EC_EDWARDS, CKM_EDDSA) generated inside the token, sensitive and not
extractable: the token signs, and the private key never leaves it.

Every failure to reach the key (module, token, PIN, object) is a ``ConfigError`` naming the URI
as ``Pkcs11Uri.shown`` prints it, without any PIN.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from custody.errors import BadInput, ConfigError
from custody.ledger.checkpoint import Verifier

URI_PREFIX = "pkcs11:"
ED25519_OID = "1.3.101.112"
_LOCK = threading.Lock()
_LIBRARIES: dict[str, Any] = {}
_TOKEN_LOCKS: dict[tuple[str, str], threading.RLock] = {}
_LOGINS = threading.local()


@dataclass(frozen=True)
class Pkcs11Uri:
    """The parts of an RFC 7512 PKCS#11 URI that custody uses."""

    module: str
    token: str
    object: str
    note_name: str | None = None
    pin_source: str | None = None
    pin_value: str | None = None

    @classmethod
    def parse(cls, text: str) -> Pkcs11Uri:
        text = text.strip()
        if not text.startswith(URI_PREFIX) or len(text) > 4096:
            raise BadInput("not a PKCS#11 URI (pkcs11:token=...;object=...?module-path=...)")
        path, _, query = text[len(URI_PREFIX):].partition("?")
        attributes = {}
        for part in filter(None, path.split(";")):
            name, _, value = part.partition("=")
            attributes[name] = unquote(value)
        options = {}
        for part in filter(None, query.split("&")):
            name, _, value = part.partition("=")
            options[name] = unquote(value)
        missing = [n for n, v in (("token", attributes.get("token")), ("object", attributes.get("object")),
                                  ("module-path", options.get("module-path"))) if not v]
        if missing:
            raise BadInput(f"the PKCS#11 URI lacks {', '.join(missing)} "
                           "(pkcs11:token=T;object=LABEL?module-path=LIB&pin-source=file:PINFILE)")
        return cls(options["module-path"], attributes["token"], attributes["object"], options.get("x-note-name") or None,
                   options.get("pin-source"), options.get("pin-value"))

    @property
    def shown(self) -> str:
        """The URI for messages: everything but a ``pin-value``."""
        text = (f"{URI_PREFIX}token={quote(self.token, safe='')};object={quote(self.object, safe='')}"
                f"?module-path={quote(self.module, safe='/')}")
        if self.pin_source is not None:
            text += f"&pin-source={quote(self.pin_source, safe='/:')}"
        if self.note_name is not None:
            text += f"&x-note-name={quote(self.note_name, safe='/')}"
        return text

    def pin(self) -> str:
        if self.pin_value is not None:
            return self.pin_value
        if self.pin_source is None:
            raise ConfigError(f"the PKCS#11 URI {self.shown} gives no pin-source (a file holding the PIN) or pin-value")
        source = self.pin_source[len("file:"):] if self.pin_source.startswith("file:") else self.pin_source
        try:
            return Path(source).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"cannot read the HSM PIN from {source} (for {self.shown}): {exc.strerror}") from exc


def with_note_name(text: str, name: str) -> str:
    """``text`` with ``x-note-name=name`` added unless it names one already."""
    if "x-note-name=" in text:
        return text.strip()
    return text.strip() + ("&" if "?" in text else "?") + "x-note-name=" + quote(name, safe="/")


def _library(uri: Pkcs11Uri) -> Any:
    import pkcs11

    with _LOCK:
        if uri.module not in _LIBRARIES:
            try:
                _LIBRARIES[uri.module] = pkcs11.lib(uri.module)
            except (OSError, RuntimeError, pkcs11.PKCS11Error) as exc:
                raise ConfigError(f"cannot load the PKCS#11 module {uri.module} (for {uri.shown}): {exc}") from exc
        return _LIBRARIES[uri.module]


def _token_lock(uri: Pkcs11Uri) -> threading.RLock:
    with _LOCK:
        return _TOKEN_LOCKS.setdefault((uri.module, uri.token), threading.RLock())


@contextmanager
def session(uri: Pkcs11Uri, *, rw: bool = False) -> Iterator[Any]:
    """A logged-in session on the URI's token, for one batch of work.

    PKCS#11 logs in a whole process, not a session: one thread at a time holds a token's
    session, and a session opened inside another (the ledger's key and a person's key on one
    token) uses the login already made instead of logging in twice."""
    import pkcs11

    with _token_lock(uri):
        depth: dict[tuple[str, str], int] = _LOGINS.__dict__.setdefault("depth", {})
        key = (uri.module, uri.token)
        nested = depth.get(key, 0) > 0
        try:
            token = _library(uri).get_token(token_label=uri.token)
            opened = token.open(rw=rw) if nested else token.open(user_pin=uri.pin(), rw=rw)
        except pkcs11.NoSuchToken as exc:
            raise ConfigError(f"no PKCS#11 token labelled {uri.token!r} in {uri.module} (for {uri.shown}); "
                              "is the token present and initialised?") from exc
        except pkcs11.PKCS11Error as exc:
            raise ConfigError(f"cannot log in to the PKCS#11 token {uri.token!r} (for {uri.shown}): "
                              f"{type(exc).__name__}; check the PIN") from exc
        depth[key] = depth.get(key, 0) + 1
        try:
            with opened:
                yield opened
        finally:
            depth[key] -= 1


def _raw_point(point: bytes) -> bytes:
    """The 32-byte Ed25519 key from CKA_EC_POINT (a DER OCTET STRING, or the raw bytes)."""
    if len(point) == 34 and point[0] == 0x04 and point[1] == 0x20:
        return point[2:]
    if len(point) == 32:
        return point
    raise ConfigError(f"the HSM's public key is not an Ed25519 point ({len(point)} bytes)")


@dataclass(frozen=True)
class TokenKey:
    """An Ed25519 key pair in a PKCS#11 token: its URI and its 32-byte public key."""

    uri: Pkcs11Uri
    public_key: bytes

    @classmethod
    def open(cls, uri: Pkcs11Uri, *, create: bool = False, missing: str = "") -> TokenKey:
        """The key the URI names; with ``create``, an Ed25519 key pair (private half sensitive
        and not extractable) is first generated in the token under that label when there is
        none. ``missing`` is advice added when there is no such key."""
        import pkcs11
        from pkcs11 import Attribute, KeyType, ObjectClass
        from pkcs11.util.ec import encode_named_curve_parameters

        with session(uri, rw=create) as opened:
            try:
                public = opened.get_key(object_class=ObjectClass.PUBLIC_KEY, key_type=KeyType.EC_EDWARDS, label=uri.object)
            except pkcs11.NoSuchKey:
                if not create:
                    raise ConfigError(f"no Ed25519 key {uri.object!r} in the PKCS#11 token {uri.token!r} "
                                      f"(for {uri.shown}){missing}") from None
                parameters = opened.create_domain_parameters(
                    KeyType.EC_EDWARDS, {Attribute.EC_PARAMS: encode_named_curve_parameters(ED25519_OID)}, local=True
                )
                public, _ = parameters.generate_keypair(
                    store=True, label=uri.object,
                    private_template={Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False},
                )
            except pkcs11.MultipleObjectsReturned as exc:
                raise ConfigError(f"more than one key {uri.object!r} in the PKCS#11 token {uri.token!r} (for {uri.shown})") from exc
            except pkcs11.PKCS11Error as exc:
                raise ConfigError(f"the PKCS#11 token {uri.token!r} refused to make or read the key {uri.object!r} "
                                  f"(for {uri.shown}): {type(exc).__name__}") from exc
            point = bytes(public[Attribute.EC_POINT])
        return cls(uri, _raw_point(point))

    def sign_many(self, messages: Sequence[bytes]) -> list[bytes]:
        """Ed25519 signatures (CKM_EDDSA) of ``messages``, in one session of the token."""
        import pkcs11
        from pkcs11 import KeyType, Mechanism, ObjectClass

        if not messages:
            return []
        uri = self.uri
        with session(uri) as opened:
            try:
                key = opened.get_key(object_class=ObjectClass.PRIVATE_KEY, key_type=KeyType.EC_EDWARDS, label=uri.object)
                return [bytes(key.sign(message, mechanism=Mechanism.EDDSA)) for message in messages]
            except pkcs11.NoSuchKey:
                raise ConfigError(f"no Ed25519 private key {uri.object!r} in the PKCS#11 token {uri.token!r} "
                                  f"(for {uri.shown})") from None
            except pkcs11.PKCS11Error as exc:
                raise ConfigError(f"the PKCS#11 token {uri.token!r} could not sign with {uri.object!r} "
                                  f"(for {uri.shown}): {type(exc).__name__}") from exc


class Pkcs11NoteSigner:
    """A C2SP note signer whose Ed25519 key is in a PKCS#11 token (the interface of
    ``custody.ledger.checkpoint.Signer``: ``name``, ``key_id``, ``sign``, ``verifier``)."""

    def __init__(self, key: TokenKey) -> None:
        if key.uri.note_name is None:
            raise BadInput(f"the PKCS#11 URI {key.uri.shown} of the ledger's key lacks x-note-name")
        self.key = key
        self.uri = key.uri
        self._verifier = Verifier.from_public_key(key.uri.note_name, key.public_key)
        self.name: str = key.uri.note_name
        self.key_id: int = self._verifier.key_id

    def __repr__(self) -> str:
        return f"Pkcs11NoteSigner(name={self.name!r}, token={self.uri.token!r}, object={self.uri.object!r})"

    def verifier(self) -> Verifier:
        return self._verifier

    def sign(self, message: bytes) -> bytes:
        signature = self.key.sign_many([message])[0]
        if not self._verifier.verify(message, signature):
            raise ConfigError(f"the PKCS#11 key {self.uri.object!r} signed with another key than the ledger's verifier key")
        return signature

    @classmethod
    def open(cls, text: str, *, create: bool = False) -> Pkcs11NoteSigner:
        """The signer of the key the URI names; with ``create``, an Ed25519 key pair is first
        generated in the token under that label when there is none."""
        uri = Pkcs11Uri.parse(text)
        if uri.note_name is None:
            raise BadInput(f"the PKCS#11 URI {uri.shown} of the ledger's key lacks x-note-name")
        return cls(TokenKey.open(uri, create=create))
