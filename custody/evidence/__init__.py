"""Evidence objects: hashing, ingest in the crash-safe order, verification of stored
objects, `show`, and the store self-test.
"""
