"""PKCS#11 URIs (RFC 7512) naming a key in an HSM: what custody reads of them and shows of them."""

from __future__ import annotations

import pytest

from custody.errors import BadInput
from custody.ledger.hsm import Pkcs11NoteSigner, Pkcs11Uri
from custody.ledger.signatures import is_token_key, load_signer

MODULE = "/usr/lib/softhsm/libsofthsm2.so"


def test_a_person_key_uri_needs_no_note_name_and_is_shown_without_its_pin() -> None:
    uri = Pkcs11Uri.parse(f"pkcs11:token=admin%20desk;object=admin-1?module-path={MODULE}&pin-value=8642")
    assert (uri.token, uri.object, uri.module, uri.note_name, uri.pin()) == ("admin desk", "admin-1", MODULE, None, "8642")
    assert uri.shown == f"pkcs11:token=admin%20desk;object=admin-1?module-path={MODULE}"
    with_source = Pkcs11Uri.parse(f"pkcs11:token=t;object=o?module-path={MODULE}&pin-source=file:/etc/pin&x-note-name=a/b")
    assert with_source.shown == f"pkcs11:token=t;object=o?module-path={MODULE}&pin-source=file:/etc/pin&x-note-name=a/b"
    assert Pkcs11Uri.parse(with_source.shown) == with_source


@pytest.mark.parametrize("text", ["pkcs11:token=t?module-path=/x.so", "pkcs11:object=o?module-path=/x.so",
                                  "pkcs11:token=t;object=o", "pkcs11:" + "a" * 5000])
def test_an_incomplete_uri_is_bad_input(text: str) -> None:
    with pytest.raises(BadInput):
        Pkcs11Uri.parse(text)
    with pytest.raises(BadInput):
        load_signer("x", text)


def test_the_ledgers_key_needs_a_note_name() -> None:
    with pytest.raises(BadInput, match="lacks x-note-name"):
        Pkcs11NoteSigner.open(f"pkcs11:token=t;object=o?module-path={MODULE}&pin-value=1")


def test_which_keys_are_token_keys() -> None:
    from pathlib import Path

    assert is_token_key(f"pkcs11:token=t;object=o?module-path={MODULE}")
    assert is_token_key(Path(f"pkcs11:token=t;object=o?module-path={MODULE}"))
    assert not is_token_key(Path("/home/a/.ssh/id_ed25519.pub")) and not is_token_key("pkcs11.pub")
