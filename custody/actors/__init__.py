"""Who acts: the people enrolled in the ledger (``actor-enrolled`` / ``actor-revoked`` events
made by an administrator), their SSH keys and roles, what each role may do (``roles.toml``,
overridable in config.toml), acting as an enrolled person (every event they cause signed with
their own key), the verification of every signature against the enrollment and role in force
at that point in the log, two-person approvals of irreversible acts, and refused attempts
recorded as ``refused`` events.

The signature format and its storage are lower down, in ``custody.ledger.sshsig`` and
``custody.ledger.signatures``: the ledger signs whatever a signer gives it; this wing decides
which signatures count.
"""
