"""Pure parts of custody.anchors against the C2SP texts: tile paths and tile sets
(tlog-tiles), cosignature key IDs and messages (tlog-cosignature), witness request parsing
(tlog-witness)."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from custody.anchors.cosign import Cosigner, CosignatureError, CosignerVerifier
from custody.anchors.tiles import TileSpec, tile_path, tiles_between
from custody.anchors.witness import parse_request
from custody.errors import BadInput


def test_tile_index_encoding_from_the_specification() -> None:
    assert tile_path(0, 1234067) == "tile/0/x001/x234/067"
    assert tile_path(2, 5) == "tile/2/005"
    assert tile_path(1, 1000, 17) == "tile/1/x001/000.p/17"


def test_tiles_of_a_tree_of_70000_and_of_256_as_the_specification_lists_them() -> None:
    tiles = list(tiles_between(0, 70_000))
    full0 = [t for t in tiles if t.level == 0 and t.width == 256]
    assert len(full0) == 273
    assert [t for t in tiles if t.width != 256 or t.level > 0] == [
        TileSpec(0, 273, 112), TileSpec(1, 0, 256), TileSpec(1, 1, 17), TileSpec(2, 0, 1),
    ]
    assert list(tiles_between(0, 256)) == [TileSpec(0, 0, 256), TileSpec(1, 0, 1)]


def test_incremental_tiles_are_only_the_new_and_grown_ones() -> None:
    assert list(tiles_between(70_000, 70_001)) == [TileSpec(0, 273, 113)]
    assert list(tiles_between(255, 256)) == [TileSpec(0, 0, 256), TileSpec(1, 0, 1)]
    assert list(tiles_between(1000, 1000)) == []


def test_cosignature_key_id_and_signed_message_follow_the_specification() -> None:
    signer = Cosigner.generate("witness.example.com/w1")
    public = signer.verifier.public_key
    assert signer.verifier.key_id.to_bytes(4, "big") == hashlib.sha256(b"witness.example.com/w1\n\x04" + public).digest()[:4]
    body = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    line = signer.cosign(body, 1679315147)
    blob = base64.b64decode(line.rstrip("\n").split(" ")[-1])
    assert line.startswith("\u2014 witness.example.com/w1 ") and len(blob) == 4 + 8 + 64
    assert int.from_bytes(blob[4:12], "big") == 1679315147
    message = b"cosignature/v1\ntime 1679315147\n" + body.encode()
    Ed25519PublicKey.from_public_bytes(public).verify(blob[12:], message)
    assert CosignerVerifier.from_text(signer.verifier.to_text()).verify_line(line, body).timestamp == 1679315147
    with pytest.raises(CosignatureError):
        signer.verifier.verify_line(line, body.replace("20852163", "20852164"))
    assert base64.b64decode(signer.verifier.to_text().split("+", 2)[2])[0] == 0x04


def test_witness_request_parsing() -> None:
    proof = base64.b64encode(b"\x01" * 32).decode()
    request = parse_request(f"old 20852014\n{proof}\n\nexample.com/log\n5\nroot\n\n\u2014 sig\n".encode())
    assert request.old == 20852014 and request.proof == (b"\x01" * 32,)
    assert request.note.startswith("example.com/log\n5\n")
    for bad in (b"old 01\n\nx", b"new 1\n\nx", b"old 1\nnot-base64!\n\nx", b"old 1\n" + b"AAAA\n" + b"\nx",
                b"old 1\n" + (proof + "\n").encode() * 64 + b"\nx", b"old 1"):
        with pytest.raises(BadInput):
            parse_request(bad)
