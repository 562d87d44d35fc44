"""Encryption at rest: the sealed segment format and the keys that open it."""
