"""The licensor plane: signed licenses checked offline, data-free usage reports, signed releases.

Three parties meet here. The **licensor** owns the technology and signs license files and
release artifacts with an Ed25519 key it keeps offline; the **operator** runs the deployment,
pins the licensor's public key(s) in its configuration (``licensor_public_keys``) and installs
license files; the deployment signs its monthly **usage report** — aggregate counters only, the
one artifact built to cross the border — with its own deployment key, which is generated on
first use and kept wrapped by the operator's root key.

Modules, each with one job:

* :mod:`.signing` — canonical JSON, Ed25519 keys, signed envelopes (shared by every artifact);
* :mod:`.license` — the license document: fields, strict parsing, issuing, deployment checks;
* :mod:`.state` — the pure state machine (valid → grace → read-only) over a license and a time;
* :mod:`.deployment` — the deployment key and identity;
* :mod:`.clock` — the signed clock high-water mark that detects clocks set back;
* :mod:`.monitor` — the in-memory gate the S3 hot path consults, refreshed periodically;
* :mod:`.metering` — per-day usage counters, in memory per worker, flushed to the database;
* :mod:`.reports` — building, signing and verifying the monthly report chain;
* :mod:`.releases` — signing and verifying release artifacts.

With no licensor key pinned none of this is active and onshore runs unrestricted.
"""
