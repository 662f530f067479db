"""The custody ledger: canonical event bytes, the RFC 6962 tree, C2SP signed notes,
checkpoints and proofs, the SQL event store, sealing, and the schema migrations.
"""
