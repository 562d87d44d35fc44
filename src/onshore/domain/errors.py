"""S3 errors: one class per S3 error code, each carrying its HTTP status and default message.

Every failure a client can see is an :class:`S3Error`. The HTTP layer renders it once, as the XML
body S3 uses::

    <Error><Code>NoSuchKey</Code><Message>...</Message><Resource>/b/k</Resource>
    <RequestId>...</RequestId></Error>

Anything that is not an ``S3Error`` becomes :class:`InternalError` with a message that leaks
nothing. Classes are named exactly as the AWS error code, so ``type(err).__name__`` is the code;
the table at the bottom (``ERRORS``) lets tests and docs enumerate them.

Reference: https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html
"""

from __future__ import annotations

from collections.abc import Mapping


class S3Error(Exception):
    """Base of every error a client can receive. Subclasses set ``status`` and ``message``."""

    status: int = 400
    message: str = "The request could not be processed."

    def __init__(
        self,
        message: str | None = None,
        *,
        resource: str | None = None,
        headers: Mapping[str, str] | None = None,
        **details: str,
    ) -> None:
        self.message = message or type(self).message
        self.resource = resource
        self.headers: dict[str, str] = dict(headers or {})
        self.details: dict[str, str] = details
        super().__init__(self.message)

    @property
    def code(self) -> str:
        return type(self).__name__


# --- 400 -----------------------------------------------------------------------------------------
class AuthorizationHeaderMalformed(S3Error):
    status, message = 400, "The authorization header is malformed."


class AuthorizationQueryParametersError(S3Error):
    status, message = 400, "Error parsing the X-Amz-Credential parameter."


class BadDigest(S3Error):
    status, message = 400, "The Content-MD5 you specified did not match what we received."


class EntityTooSmall(S3Error):
    status = 400
    message = "Your proposed upload is smaller than the minimum allowed object size."


class EntityTooLarge(S3Error):
    status = 400
    message = "Your proposed upload exceeds the maximum allowed object size."


class ExpiredToken(S3Error):
    status, message = 400, "The provided token has expired."


class MalformedPolicy(S3Error):
    status, message = 400, "Policies must be valid JSON and the first byte must be '{'"


class AccessControlListNotSupported(S3Error):
    status, message = 400, "The bucket does not allow ACLs"


class InvalidBucketAclWithObjectOwnership(S3Error):
    status = 400
    message = "Bucket cannot have ACLs set with ObjectOwnership's BucketOwnerEnforced setting"


class MalformedACLError(S3Error):
    status = 400
    message = (
        "The XML you provided was not well-formed or did not validate against our published schema"
    )


class IllegalVersioningConfigurationException(S3Error):
    status = 400
    message = "The Versioning element must be specified"


class IncompleteBody(S3Error):
    status = 400
    message = "You did not provide the number of bytes specified by the Content-Length HTTP header."


class InvalidArgument(S3Error):
    status, message = 400, "Invalid Argument"


class InvalidBucketName(S3Error):
    status, message = 400, "The specified bucket is not valid."


class InvalidDigest(S3Error):
    status, message = 400, "The Content-MD5 you specified is not valid."


class IllegalLocationConstraintException(S3Error):
    status, message = 400, "The location constraint is incompatible with this endpoint's region."


class InvalidLocationConstraint(S3Error):
    status, message = 400, "The specified location-constraint is not valid."


class InvalidPart(S3Error):
    status = 400
    message = (
        "One or more of the specified parts could not be found. The part may not have been "
        "uploaded, or the specified entity tag may not match the part's entity tag."
    )


class InvalidPartOrder(S3Error):
    status = 400
    message = "The list of parts was not in ascending order. Parts must be ordered by part number."


class InvalidRequest(S3Error):
    status, message = 400, "Invalid Request"


class InvalidStorageClass(S3Error):
    status, message = 400, "The storage class you specified is not valid."


class InvalidURI(S3Error):
    status, message = 400, "Couldn't parse the specified URI."


class KeyTooLongError(S3Error):
    status, message = 400, "Your key is too long."


class MalformedXML(S3Error):
    status = 400
    message = (
        "The XML you provided was not well-formed or did not validate against our published schema."
    )


class MalformedTrailerError(S3Error):
    status = 400
    message = (
        "The request contained trailing data that was not well-formed or did not conform to "
        "our published schema."
    )


class MaxMessageLengthExceeded(S3Error):
    status, message = 400, "Your request was too big."


class MetadataTooLarge(S3Error):
    status = 400
    message = "Your metadata headers exceed the maximum allowed metadata size."


class MissingSecurityHeader(S3Error):
    status, message = 400, "Your request is missing a required header."


class RequestTimeout(S3Error):
    status = 400
    message = (
        "Your socket connection to the server was not read from or written to within the "
        "timeout period."
    )


class InvalidChunkSizeError(S3Error):
    status, message = 400, "Only the last chunk is allowed to have a size less than 8192 bytes"


class TooManyParts(S3Error):
    status, message = 400, "You have attempted to upload more than 10,000 parts."


class UnexpectedContent(S3Error):
    status, message = 400, "This request does not support content."


class XAmzContentSHA256Mismatch(S3Error):
    status = 400
    message = "The provided 'x-amz-content-sha256' header does not match what was computed."


class _KmsError(S3Error):
    """An SSE-KMS failure S3 reports under the KMS error's name, prefixed ``KMS.``."""

    status = 400
    kms_code = "KMSInternalException"

    @property
    def code(self) -> str:
        return "KMS." + self.kms_code


class KmsDisabledException(_KmsError):
    kms_code, message = "DisabledException", "The KMS key that protects this object is disabled."


class KmsInvalidStateException(_KmsError):
    kms_code = "KMSInvalidStateException"
    message = "The KMS key that protects this object is pending deletion."


class KmsNotFoundException(_KmsError):
    kms_code, message = "NotFoundException", "The KMS key does not exist."


class InvalidEncryptionAlgorithmError(S3Error):
    status, message = 400, "The encryption request you specified is not valid."


# --- 403 -----------------------------------------------------------------------------------------
class AccessDenied(S3Error):
    status, message = 403, "Access Denied"


class AccountProblem(S3Error):
    """S3's code for "a problem with your account prevents the operation". onshore answers it
    when the deployment's license does not allow new writes (the message names the license and
    says what to do); reads, listings and deletes are never refused."""

    status, message = 403, "The deployment's license does not allow new writes."


class InvalidAccessKeyId(S3Error):
    status = 403
    message = "The AWS Access Key Id you provided does not exist in our records."


class InvalidObjectState(S3Error):
    status, message = 403, "The operation is not valid for the current state of the object."


class QuotaExceeded(S3Error):
    """Not an AWS code: the bucket owner's quota (bytes, objects or buckets) would be exceeded;
    the message names the quota and its limit."""

    status, message = 403, "The tenant's quota would be exceeded by this request."


class RequestTimeTooSkewed(S3Error):
    status = 403
    message = "The difference between the request time and the server's time is too large."


class SignatureDoesNotMatch(S3Error):
    status = 403
    message = (
        "The request signature we calculated does not match the signature you provided. "
        "Check your key and signing method."
    )


# --- 404 -----------------------------------------------------------------------------------------
class NoSuchBucket(S3Error):
    status, message = 404, "The specified bucket does not exist"


class NoSuchKey(S3Error):
    status, message = 404, "The specified key does not exist."


class NoSuchUpload(S3Error):
    status = 404
    message = (
        "The specified upload does not exist. The upload ID may be invalid, or the upload may "
        "have been aborted or completed."
    )


class NoSuchVersion(S3Error):
    status = 404
    message = "The version ID specified in the request does not match an existing version."


class NoSuchBucketPolicy(S3Error):
    status, message = 404, "The bucket policy does not exist"


class NoSuchPublicAccessBlockConfiguration(S3Error):
    status, message = 404, "The public access block configuration was not found"


class ServerSideEncryptionConfigurationNotFoundError(S3Error):
    status, message = 404, "The server side encryption configuration was not found"


class NoSuchTagSet(S3Error):
    status, message = 404, "The TagSet does not exist"


# --- 405, 409, 411, 412, 416 ---------------------------------------------------------------------
class MethodNotAllowed(S3Error):
    status = 405
    message = "The specified method is not allowed against this resource."


class BucketAlreadyExists(S3Error):
    status = 409
    message = (
        "The requested bucket name is not available. The bucket namespace is shared by all "
        "users of the system. Please select a different name and try again."
    )


class BucketAlreadyOwnedByYou(S3Error):
    status = 409
    message = "Your previous request to create the named bucket succeeded and you already own it."


class BucketNotEmpty(S3Error):
    status, message = 409, "The bucket you tried to delete is not empty"


class ConditionalRequestConflict(S3Error):
    status = 409
    message = "A conflicting operation occurred. If using PutObject you can retry the request."


class OperationAborted(S3Error):
    status = 409
    message = (
        "A conflicting conditional operation is currently in progress against this resource. "
        "Please try again."
    )


class MissingContentLength(S3Error):
    status, message = 411, "You must provide the Content-Length HTTP header."


class PreconditionFailed(S3Error):
    status = 412
    message = "At least one of the pre-conditions you specified did not hold"


class InvalidRange(S3Error):
    status, message = 416, "The requested range is not satisfiable"


class InvalidPartNumber(S3Error):
    status, message = 416, "The requested partnumber is not satisfiable"


# --- 5xx -----------------------------------------------------------------------------------------
class InternalError(S3Error):
    status, message = 500, "We encountered an internal error. Please try again."


class NotImplemented(S3Error):  # noqa: A001 - the S3 code is literally "NotImplemented"
    status = 501
    message = "A header you provided implies functionality that is not implemented."


#: The same class under a name that does not shadow Python's ``NotImplemented`` constant.
S3NotImplemented = NotImplemented


class InsufficientStorage(S3Error):
    """The disk holding the data directory is full. Not an AWS code (AWS never runs out of
    space); 507 as HTTP defines it and as MinIO answers, so clients fail at once with a clear
    message instead of retrying a write that cannot succeed until space is freed."""

    status = 507
    message = (
        "The server has no space left to store this request's data; nothing was written. "
        "Retry once the operator has freed space or added capacity."
    )


class ServiceUnavailable(S3Error):
    status, message = 503, "Please reduce your request rate."


class SlowDown(S3Error):
    status, message = 503, "Please reduce your request rate."


def _all_errors() -> dict[str, type[S3Error]]:
    found: dict[str, type[S3Error]] = {}
    stack: list[type[S3Error]] = list(S3Error.__subclasses__())
    while stack:
        cls = stack.pop()
        found[cls.__name__] = cls
        stack.extend(cls.__subclasses__())
    return found


#: Every S3 error code this server can return, by code.
ERRORS: Mapping[str, type[S3Error]] = _all_errors()

__all__ = ["ERRORS", "S3Error", *sorted(ERRORS)]


class OwnershipControlsNotFoundError(S3Error):
    status, message = 404, "The bucket ownership controls were not found"


class UnresolvableGrantByEmailAddress(S3Error):
    status = 400
    message = "The email address you provided does not match any account on record."
