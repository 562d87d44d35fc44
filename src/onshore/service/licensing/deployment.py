"""The deployment's identity: an Ed25519 key pair generated on first use.

The public half is what ``onshore license request`` prints for the licensor, who binds a license
to it; the private half signs usage reports and the clock high-water mark. It is stored in the
database *wrapped* by the operator's root key (:mod:`onshore.service.rootkey`), under a context
that names its purpose, so the database alone never yields it. The deployment id shown in
reports is derived from the public key, so it cannot be claimed by another deployment.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from onshore.service.licensing import signing
from onshore.service.rootkey import KeyWrapper
from onshore.storage.sqlite.licensing import SqliteLicensingStore

WRAP_CONTEXT = b"onshore deployment signing key v1"


@dataclass(frozen=True, slots=True)
class DeploymentKey:
    private: Ed25519PrivateKey
    public_text: str

    @property
    def public(self) -> Ed25519PublicKey:
        return self.private.public_key()

    @property
    def deployment_id(self) -> str:
        return "dep-" + signing.key_id(self.public)

    def sign(self, data: bytes) -> bytes:
        return self.private.sign(data)


def load_or_create(store: SqliteLicensingStore, root: KeyWrapper, now: datetime) -> DeploymentKey:
    """The deployment key, generated and stored on first use (concurrent first uses agree)."""
    found = store.deployment_key()
    if found is None:
        fresh = Ed25519PrivateKey.generate()
        wrapped = root.wrap(signing.private_key_raw(fresh), context=WRAP_CONTEXT)
        found = store.create_deployment_key(
            signing.public_key_text(fresh.public_key()), wrapped, int(now.timestamp() * 1e6)
        )
    public, wrapped = found
    private = Ed25519PrivateKey.from_private_bytes(root.unwrap(wrapped, context=WRAP_CONTEXT))
    if signing.public_key_text(private.public_key()) != public:
        raise ValueError("the stored deployment key pair does not match")
    return DeploymentKey(private, public)
