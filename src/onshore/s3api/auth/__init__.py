"""Request authentication: SigV4 (header and presigned URL) and the verified body reader."""

from onshore.s3api.auth.payload import PayloadReader, Receive
from onshore.s3api.auth.sigv4 import (
    AuthResult,
    PayloadMode,
    SecretLookup,
    SigningKeyInfo,
    authenticate,
)

__all__ = [
    "AuthResult",
    "PayloadMode",
    "PayloadReader",
    "Receive",
    "SecretLookup",
    "SigningKeyInfo",
    "authenticate",
]
