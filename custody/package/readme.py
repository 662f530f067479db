"""``README.txt``: what the package holds and how to verify all of it with stock tools."""

from __future__ import annotations

from custody import TOOL
from custody.package.model import ExportContext


_VERIFY_PROOF = '''import base64, hashlib, sys
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

vkey, proof, leaf = (open(p, "rb").read() for p in sys.argv[1:4])
name, key_id, key = vkey.decode().strip().split("+", 2)
key = base64.b64decode(key)
assert key[0] == 1 and hashlib.sha256(name.encode() + b"\\n" + key).digest()[:4].hex() == key_id
head, checkpoint = proof.decode().split("\\n\\n", 1)
lines = head.split("\\n")
assert lines[0] == "c2sp.org/tlog-proof@v1" and lines[1].startswith("index ")
index, hashes = int(lines[1][6:]), [base64.b64decode(h) for h in lines[2:]]
body, signatures = checkpoint.split("\\n\\n", 1)
body += "\\n"
signed = [base64.b64decode(l.split(" ")[2]) for l in signatures.splitlines() if l.startswith("\\u2014 " + name + " ")]
signature = next(s[4:] for s in signed if s[:4].hex() == key_id)
Ed25519PublicKey.from_public_bytes(key[1:]).verify(signature, body.encode())  # raises if forged
origin, size, root = body.split("\\n")[:3]
size, root = int(size), base64.b64decode(root)
node, fn, sn = hashlib.sha256(b"\\0" + leaf).digest(), index, size - 1   # RFC 9162 2.1.3.2
for sibling in hashes:
    if fn % 2 == 1 or fn == sn:
        node = hashlib.sha256(b"\\1" + sibling + node).digest()
        while fn % 2 == 0 and fn != 0:
            fn, sn = fn >> 1, sn >> 1
    else:
        node = hashlib.sha256(b"\\1" + node + sibling).digest()
    fn, sn = fn >> 1, sn >> 1
assert sn == 0 and node == root, "the event is NOT in the signed tree"
print(f"event {index} is in {origin}'s tree of {size} events, signed by {name}")
'''


def render_readme(context: ExportContext) -> str:
    """``README.txt``: what the package holds and how to verify all of it with stock tools."""
    first = context.events[0].seq if context.events else 0
    script = "".join("    " + line + "\n" if line else "\n" for line in _VERIFY_PROOF.splitlines())
    return f"""EVIDENCE PACKAGE - INCIDENT {context.incident}

  Prepared:             {context.created_text} by {context.workspace.settings.actor}, with {TOOL}
  Source organisation:  {context.organization}
  Recipient:            {context.recipient}
  Package identifier:   {context.package_id}

This directory is a BagIt 1.0 bag (RFC 8493). Nothing in it needs access to police systems to
be checked, and every check below uses stock tools. Open report.html in any browser for a
readable summary (it fetches nothing); hash-certification.txt is a draft certification for a
qualified person to complete and sign.

WHAT IS HERE

  data/                         the original recordings, byte for byte, named
                                <incident>_<camera>_<recorded time, UTC>.<ext>
  manifest-sha256.txt           SHA-256 of every file in data/  (sha256sum format)
  manifest-sha512.txt           SHA-512 of every file in data/  (sha512sum format)
  blake3sums.txt                BLAKE3-256 of every file in data/ (b3sum format). It is a tag
                                file, not a manifest-blake3.txt, because "blake3" is not a
                                registered BagIt algorithm name; the tag manifests cover it.
  bagit.txt, bag-info.txt       BagIt declaration; source organisation, date, incident
                                (External-Identifier), Payload-Oxum (bytes.files)
  tagmanifest-sha256.txt,       SHA-256 / SHA-512 of every file outside data/ (except these two)
  tagmanifest-sha512.txt
  custody/incident.json         the incident record (as its custody events say it is)
  custody/items.json            each file: original name, camera, digests, its ingest event
  custody/events.jsonl          the custody events of these files and of the incident, one JSON
                                object per line; "leaf" is the event's canonical bytes and
                                "hash" is SHA-256(0x00 || leaf)
  custody/proofs/event-N.tlog-proof   C2SP tlog-proof that event N is in the ledger
  custody/checkpoint.txt        the signed checkpoint (C2SP signed note, Ed25519) every proof
                                is against: {context.checkpoint.origin}, {context.checkpoint.size} events
  custody/verifier.key          the ledger's public key: {context.verifier.to_text()}
  custody/packets/*.packets     each video's packet hash list (SHA-256 of every audio/video
                                packet), recorded when it was first preserved
  custody/sheets/*.png          a contact sheet (frames across the recording) of each video

1. THE BAG AND ITS FILES

    bagit.py --validate .             (pip install bagit; run in this directory)
    sha256sum -c manifest-sha256.txt
    sha512sum -c manifest-sha512.txt
    b3sum -c blake3sums.txt           (https://github.com/BLAKE3-team/BLAKE3, Debian: b3sum)
    sha256sum -c tagmanifest-sha256.txt

  On Windows: Get-FileHash -Algorithm SHA256 data\\FILE, and compare with manifest-sha256.txt.

2. THE KEY

  Obtain the ledger's verifier key from {context.organization if context.organization_given else "the sending agency"}
  by a channel you trust (not from this package) and compare it with custody/verifier.key. Everything below is only as
  trustworthy as that comparison.

3. THE CUSTODY EVENTS

  Each event's hash is its canonical bytes hashed with a 0x00 prefix (RFC 6962 leaf hash):

    python3 -c 'import hashlib, json
    for line in open("custody/events.jsonl"):
        e = json.loads(line)
        assert hashlib.sha256(b"\\0" + e["leaf"].encode()).hexdigest() == e["hash"], e["seq"]
        assert json.loads(e["leaf"])["seq"] == e["seq"]
    print("every event hash recomputes")'

  The other fields of each line repeat what "leaf" says, for reading; "leaf" is what counts.

4. THE PROOFS AND THE SIGNED CHECKPOINT

  custody/checkpoint.txt is a C2SP tlog-checkpoint (https://c2sp.org/tlog-checkpoint) in a
  C2SP signed note (https://c2sp.org/signed-note), signed with Ed25519 by the key in
  custody/verifier.key. Each custody/proofs/event-N.tlog-proof (https://c2sp.org/tlog-proof)
  gives the RFC 9162 inclusion proof of event N's leaf hash at index N, followed by that same
  checkpoint. Go's golang.org/x/mod/sumdb/note (note.NewVerifier, note.Open) checks the
  signature, and golang.org/x/mod/sumdb/tlog or github.com/transparency-dev/merkle/proof
  (VerifyInclusion) checks the proof. Or, with Python 3 and the 'cryptography' package, save
  this as verify_proof.py:

{script}
  and run it for an event, e.g. event {first}:

    python3 -c 'import json, sys
    for line in open("custody/events.jsonl"):
        e = json.loads(line)
        if e["seq"] == int(sys.argv[1]): sys.stdout.write(e["leaf"])' {first} > leaf
    python3 verify_proof.py custody/verifier.key custody/proofs/event-{first}.tlog-proof leaf

5. THE FILES ARE THE ONES THE EVENTS RECORD

  Each file's "ingested" event (custody/items.json gives its number) records the BLAKE3-256
  (the event's subject), SHA-256 and size of the bytes preserved; they must equal the values in
  the manifests. Each file's "linked" event ties it to the incident. The SHA-256 of each packet
  list is recorded in its ingest event's details.attachments.packets.

6. ALL OF IT AT ONCE

    custody verify-package . --trust-key 'KEY'

  checks all of the above without a database, a store or any configuration, reports every
  finding naming its file, and exits 3 on any. With --receipt RECEIPT --signer-key KEYFILE it
  also writes a receipt signed with your own key (make one with 'custody receipt keygen NAME
  --out KEYFILE'), saying what you verified and when; returned to the sender, 'custody receipt
  import RECEIPT' records it in the custody ledger.
"""
