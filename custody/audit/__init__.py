"""Audits: audit runs, the rotating schedule and shards, findings and metrics.

Integrity audits: every preserved object still there, unaltered, locked and accounted for,
and the ledger itself intact. An audit states exactly what it checked and records itself in the
ledger as an ``audited`` event.

Levels
    ``quick``: the ledger verifies (hash chain, Merkle tree, checkpoint signatures, every WORM
    checkpoint; ``custody.ledger.seal.verify_ledger``) and its derived evidence table agrees with the
    ingest events; every recorded object (and every retained attachment recorded with it) exists
    at its recorded version, with its recorded size and, in the store's metadata, its recorded
    SHA-256 (and BLAKE3); its retention is COMPLIANCE and lasts at least until the latest date
    the ledger records for it; its legal hold is on exactly when the ledger says it is held;
    no object in the store is unrecorded; the canary lock self-test passes. Quick never reads
    an object's bytes, so a changed byte that kept the size and the metadata is invisible to it.

    ``full``: quick, plus every object's bytes re-read and hashed, ``workers`` objects at a time:
    BLAKE3 for evidence, SHA-256 for attachments (their recorded digest).

Shards (``--shard K/N``)
    An evidence object belongs to shard ``int(blake3[:16], 16) % N + 1``; its attachments go
    with it. An unrecorded key belongs to the shard of its name when the name after the prefix
    is a 64-hex digest, else of SHA-256(key). So shards 1..N together check every object
    exactly once. The ledger verification and the canary are store-wide and run in every shard.

Rotation (``--rotation N``)
    Each run re-hashes the objects of one slot: an object's slot is ``int(blake3[16:32], 16) % N``
    (other digest bits than the shard's, so slots stay even within a shard, and an object keeps
    its slot as objects are added). The slot of a run is one after the slot of the latest
    ``audited`` event with the same shard and the same N (slot 0 when there is none), so every
    N consecutive runs of a shard cover all N slots and every object is re-hashed at least once
    in them. A run that ends without recording its event (store or database unreachable) is
    not a run: the next one repeats its slot.

How the schedule is persisted (no table of its own)
    The ledger is the schedule. Each ``audited`` event records ``level``, ``shard``
    (``index``/``count``), ``rotation`` (``n``/``slot``, or null), ``through_seq`` (the ledger's
    size when the audit began: the objects in scope are those whose ingest event comes before it)
    and ``not_rehashed`` (objects in scope whose bytes could not be read). The objects an event
    fully re-hashed are therefore exactly those ingested before ``through_seq``, in its shard, in
    its slot (every one at level ``full``), minus ``not_rehashed``; ``rehashed`` records their
    count and the SHA-256 of their sorted digests (one per line) so that the derivation can be
    checked. The next slot and each object's last full check are recomputed from these events
    on every run.

Errors
    A store or database that cannot be reached (``StorageUnavailable``, ``LedgerUnavailable``)
    ends the audit without recording it (exit 5). Everything about one object is a finding,
    and every finding is collected. Local objects are hashed memory-mapped (as ``custody
    verify`` does): a disk error inside a mapped read stops the process (SIGBUS) instead of
    becoming a finding.

Modules
    ``shards`` (which objects a shard and a slot hold), ``schedule`` (earlier runs, the next
    slot, each object's last full check), ``recorded`` (what the ledger records of every object),
    ``report`` (the request, per-object results and the report), ``rehash`` (re-reading stored
    bytes; the local prehash), ``objects`` (the checks of one object), ``unrecorded`` (objects
    the ledger does not account for), ``run`` (``run_audit``), ``metrics`` (Prometheus).
"""
