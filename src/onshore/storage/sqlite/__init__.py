"""The SQLite metadata store: the embedded default, one file, WAL, a single group-commit writer.

Modules, in the order a reader may want them: ``store`` (the public class and its read paths),
``writer`` (the group-commit thread), ``mutations`` (each write transaction), ``listing`` (the
skip-scan behind every listing), ``codec`` (rows to domain values), ``schema`` (connections and
numbered migrations in ``migrations/``).
"""

from onshore.storage.sqlite.store import SqliteMetadataStore

__all__ = ["SqliteMetadataStore"]
