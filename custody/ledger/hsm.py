"""The ledger's checkpoint signing key in an HSM, through PKCS#11 (``python-pkcs11``).

The data directory's ``signing.key`` then holds no key at all, only an RFC 7512 PKCS#11 URI
naming it, e.g.::

    pkcs11:token=custody-ledger;object=ledger?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/custody/hsm.pin&x-note-name=host/custody/1a2b3c4d

``module-path`` is the PKCS#11 library, ``pin-source`` a file holding the user PIN (or
``pin-value`` the PIN itself), and ``x-note-name`` the key's name in the C2SP signed notes. The
key is an Ed25519 key pair (CKK_EC_EDWARDS, CKM_EDDSA) generated inside the token, sensitive and
not extractable: checkpoints are signed by the token, and the private key never leaves it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from custody.errors import BadInput, ConfigError
from custody.ledger.checkpoint import Verifier

URI_PREFIX = "pkcs11:"
ED25519_OID = "1.3.101.112"
_LOCK = threading.Lock()
_LIBRARIES: dict[str, Any] = {}


@dataclass(frozen=True)
class Pkcs11Uri:
    """The parts of an RFC 7512 PKCS#11 URI that custody uses."""

    module: str
    token: str
    object: str
    note_name: str
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
                                  ("module-path", options.get("module-path")), ("x-note-name", options.get("x-note-name")))
                   if not v]
        if missing:
            raise BadInput(f"the PKCS#11 URI lacks {', '.join(missing)}")
        return cls(options["module-path"], attributes["token"], attributes["object"], options["x-note-name"],
                   options.get("pin-source"), options.get("pin-value"))

    def pin(self) -> str:
        if self.pin_value is not None:
            return self.pin_value
        if self.pin_source is None:
            raise ConfigError("the PKCS#11 URI gives no pin-source (a file holding the PIN) or pin-value")
        source = self.pin_source[len("file:"):] if self.pin_source.startswith("file:") else self.pin_source
        try:
            return Path(source).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"cannot read the HSM PIN from {source}: {exc.strerror}") from exc


def with_note_name(text: str, name: str) -> str:
    """``text`` with ``x-note-name=name`` added unless it names one already."""
    if "x-note-name=" in text:
        return text.strip()
    from urllib.parse import quote

    return text.strip() + ("&" if "?" in text else "?") + "x-note-name=" + quote(name, safe="/")


def _library(module: str) -> Any:
    import pkcs11

    with _LOCK:
        if module not in _LIBRARIES:
            try:
                _LIBRARIES[module] = pkcs11.lib(module)
            except (OSError, RuntimeError, pkcs11.PKCS11Error) as exc:
                raise ConfigError(f"cannot load the PKCS#11 module {module}: {exc}") from exc
        return _LIBRARIES[module]


def _raw_point(point: bytes) -> bytes:
    """The 32-byte Ed25519 key from CKA_EC_POINT (a DER OCTET STRING, or the raw bytes)."""
    if len(point) == 34 and point[0] == 0x04 and point[1] == 0x20:
        return point[2:]
    if len(point) == 32:
        return point
    raise ConfigError(f"the HSM's public key is not an Ed25519 point ({len(point)} bytes)")


class Pkcs11NoteSigner:
    """A C2SP note signer whose Ed25519 key is in a PKCS#11 token (the interface of
    ``custody.ledger.checkpoint.Signer``: ``name``, ``key_id``, ``sign``, ``verifier``)."""

    def __init__(self, uri: Pkcs11Uri, public_key: bytes) -> None:
        self.uri = uri
        self._verifier = Verifier.from_public_key(uri.note_name, public_key)
        self.name: str = uri.note_name
        self.key_id: int = self._verifier.key_id

    def __repr__(self) -> str:
        return f"Pkcs11NoteSigner(name={self.name!r}, token={self.uri.token!r}, object={self.uri.object!r})"

    def verifier(self) -> Verifier:
        return self._verifier

    def _session(self, rw: bool = False) -> Any:
        import pkcs11

        try:
            token = _library(self.uri.module).get_token(token_label=self.uri.token)
            return token.open(user_pin=self.uri.pin(), rw=rw)
        except pkcs11.NoSuchToken as exc:
            raise ConfigError(f"no PKCS#11 token labelled {self.uri.token!r} in {self.uri.module}") from exc
        except pkcs11.PKCS11Error as exc:
            raise ConfigError(f"cannot log in to the PKCS#11 token {self.uri.token!r}: {type(exc).__name__}; check the PIN") from exc

    def sign(self, message: bytes) -> bytes:
        import pkcs11
        from pkcs11 import KeyType, Mechanism, ObjectClass

        with self._session() as session:
            try:
                key = session.get_key(object_class=ObjectClass.PRIVATE_KEY, key_type=KeyType.EC_EDWARDS, label=self.uri.object)
                signature: bytes = key.sign(message, mechanism=Mechanism.EDDSA)
            except pkcs11.PKCS11Error as exc:
                raise ConfigError(f"the PKCS#11 token {self.uri.token!r} could not sign with {self.uri.object!r}: "
                                  f"{type(exc).__name__}") from exc
        if not self._verifier.verify(message, signature):
            raise ConfigError(f"the PKCS#11 key {self.uri.object!r} signed with another key than the ledger's verifier key")
        return signature

    @classmethod
    def open(cls, text: str, *, create: bool = False) -> Pkcs11NoteSigner:
        """The signer of the key the URI names; with ``create``, an Ed25519 key pair is first
        generated in the token under that label when there is none."""
        import pkcs11
        from pkcs11 import Attribute, KeyType, ObjectClass
        from pkcs11.util.ec import encode_named_curve_parameters

        uri = Pkcs11Uri.parse(text)
        probe = cls.__new__(cls)
        probe.uri = uri
        with probe._session(rw=create) as session:
            try:
                public = session.get_key(object_class=ObjectClass.PUBLIC_KEY, key_type=KeyType.EC_EDWARDS, label=uri.object)
            except pkcs11.NoSuchKey:
                if not create:
                    raise ConfigError(f"no Ed25519 key {uri.object!r} in the PKCS#11 token {uri.token!r}") from None
                parameters = session.create_domain_parameters(
                    KeyType.EC_EDWARDS, {Attribute.EC_PARAMS: encode_named_curve_parameters(ED25519_OID)}, local=True
                )
                public, _ = parameters.generate_keypair(
                    store=True, label=uri.object,
                    private_template={Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False},
                )
            except pkcs11.MultipleObjectsReturned as exc:
                raise ConfigError(f"more than one key {uri.object!r} in the PKCS#11 token {uri.token!r}") from exc
            except pkcs11.PKCS11Error as exc:
                raise ConfigError(f"the PKCS#11 token {uri.token!r} refused to make or read the key {uri.object!r}: "
                                  f"{type(exc).__name__}") from exc
            point = bytes(public[Attribute.EC_POINT])
        return cls(uri, _raw_point(point))
