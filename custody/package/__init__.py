"""The prosecutor's package: a BagIt bag that anyone can verify offline.

Modules, one concern each:

- ``layout``: the bag's file names and the parsers of its plain-text formats (manifests,
  ``bag-info.txt``); what the writer writes and the verifier reads.
- ``digests``: SHA-256, SHA-512 and BLAKE3 of a file in one read.
- ``model``: what an export is made of (items, the rendering context, the result).
- ``export``: ``export_package``, from the ledger and the store to a finished, recorded bag.
- ``writer``: writing the tag files and manifests into the bag.
- ``report`` (+ ``templates/``): ``report.html``, rendered by Jinja2 with autoescaping.
- ``certification``: the draft hash certification; ``readme``: ``README.txt``.
- ``verify``: ``verify_package`` (``verify-package``), built from ``verification`` (the
  report and its findings), ``verify_bag``, ``verify_events`` and ``verify_bindings``.
- ``receipt``: recipients' signed receipts and their import into the ledger.
"""
