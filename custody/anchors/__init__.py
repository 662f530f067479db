"""What outsiders hold about the ledger, so that the city's word is not the only proof.

* ``cosign``: C2SP tlog-cosignature keys and cosignatures (Ed25519, ``cosignature/v1``).
* ``witness``: a C2SP tlog-witness (``custody witness serve``): it keeps, per log, the latest
  checkpoint it cosigned and cosigns only checkpoints that extend it.
* ``witnessing``: the log's side: after each seal the checkpoint goes to every configured
  witness with a consistency proof, and the cosignatures are kept (database and WORM store).
* ``records``: the ``checkpoint_anchors`` table and the WORM objects under ``anchors/``.
* ``config``: the ``[anchors]`` section of the configuration file.

This wing sits above ``custody.ledger``; it imports only the ledger, ``custody.errors``,
``custody.settings`` and ``storage``.
"""
