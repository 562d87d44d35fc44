"""The AWS KMS JSON API (``X-Amz-Target: TrentService.<Operation>``), on the S3 port.

``aws kms --endpoint-url http://HOST:9000 ...`` and boto3's ``kms`` client POST JSON
(``application/x-amz-json-1.1``) to ``/`` with the operation in ``X-Amz-Target``, signed with
SigV4 for service ``kms``. Errors are JSON ``{"__type": ..., "message": ...}`` with status 400
(404-style conditions are 400 in KMS too). Binary fields are base64, as on the wire.

A tenant being offboarded may call only the operations in :data:`READS` (``Decrypt`` among
them: reading old ciphertext is an export); the others get ``AccountProblem``
(:mod:`onshore.service.offboarding.gate`).

https://docs.aws.amazon.com/kms/latest/APIReference/Welcome.html
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

from onshore.domain.errors import AccountProblem, S3Error
from onshore.domain.models import KmsKey
from onshore.s3api.auth import authenticate
from onshore.s3api.http import Request, Response
from onshore.service.audit.planes import KMS_PARAMETERS, Plane, pick
from onshore.service.blocking import Blocking
from onshore.service.identity import Identities
from onshore.service.kms.keys import KmsError, KmsService, key_material_id
from onshore.service.offboarding.gate import OffboardingGate
from onshore.service.rootkey import KEY_SERVICE_DOWN, KeyServiceUnavailable

log = logging.getLogger("onshore.kms")

TARGET_PREFIX = "TrentService."
CONTENT_TYPE = "application/x-amz-json-1.1"
MAX_BODY = 64 * 1024

Json = dict[str, Any]
Operation = Callable[[KmsService, str, Json], Json]


def _b64(body: Json, name: str) -> bytes:
    value = body.get(name)
    if not isinstance(value, str):
        raise KmsError("ValidationException", f"{name} is required.")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise KmsError("ValidationException", f"{name} is not valid base64.") from None


def _str(body: Json, name: str, *, required: bool = True) -> str:
    value = body.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not value:
        raise KmsError("ValidationException", f"{name} is required.")
    return value


def _context(body: Json) -> dict[str, str] | None:
    value = body.get("EncryptionContext")
    if value is None:
        return None
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise KmsError("ValidationException", "EncryptionContext must be a string map.")
    return value


def _metadata(kms: KmsService, key: KmsKey) -> Json:
    out: Json = {
        "AWSAccountId": key.account_id,
        "KeyId": key.key_id,
        "Arn": kms.arn(key),
        "CreationDate": key.created.timestamp(),
        "Enabled": key.state == "Enabled",
        "Description": key.description,
        "KeyUsage": "ENCRYPT_DECRYPT",
        "KeyState": key.state,
        "Origin": "AWS_KMS",
        "KeyManager": "CUSTOMER",
        "KeySpec": "SYMMETRIC_DEFAULT",
        "CustomerMasterKeySpec": "SYMMETRIC_DEFAULT",
        "EncryptionAlgorithms": ["SYMMETRIC_DEFAULT"],
        "MultiRegion": False,
    }
    if key.deletion is not None:
        out["DeletionDate"] = key.deletion.timestamp()
    out["CurrentKeyMaterialId"] = key_material_id(key.key_id, key.material_version)
    return out


def create_key(kms: KmsService, account: str, body: Json) -> Json:
    spec = body.get("KeySpec", body.get("CustomerMasterKeySpec", "SYMMETRIC_DEFAULT"))
    if spec != "SYMMETRIC_DEFAULT" or body.get("KeyUsage", "ENCRYPT_DECRYPT") != "ENCRYPT_DECRYPT":
        raise KmsError(
            "UnsupportedOperationException", "Only SYMMETRIC_DEFAULT keys are supported."
        )
    key = kms.create_key(account, _str(body, "Description", required=False))
    return {"KeyMetadata": _metadata(kms, key)}


def describe_key(kms: KmsService, account: str, body: Json) -> Json:
    return {"KeyMetadata": _metadata(kms, kms.resolve(account, _str(body, "KeyId")))}


def list_keys(kms: KmsService, account: str, body: Json) -> Json:
    keys = kms.list_keys(account)
    return {
        "Keys": [{"KeyId": k.key_id, "KeyArn": kms.arn(k)} for k in keys],
        "Truncated": False,
    }


def enable_key(kms: KmsService, account: str, body: Json) -> Json:
    kms.set_enabled(account, _str(body, "KeyId"), True)
    return {}


def disable_key(kms: KmsService, account: str, body: Json) -> Json:
    kms.set_enabled(account, _str(body, "KeyId"), False)
    return {}


def schedule_key_deletion(kms: KmsService, account: str, body: Json) -> Json:
    days = body.get("PendingWindowInDays", 30)
    if not _is_int(days):
        raise KmsError("ValidationException", "PendingWindowInDays must be an integer.")
    key = kms.schedule_deletion(account, _str(body, "KeyId"), days)
    assert key.deletion is not None
    return {
        "KeyId": kms.arn(key),
        "DeletionDate": key.deletion.timestamp(),
        "KeyState": key.state,
        "PendingWindowInDays": days,
    }


def cancel_key_deletion(kms: KmsService, account: str, body: Json) -> Json:
    key = kms.cancel_deletion(account, _str(body, "KeyId"))
    return {"KeyId": kms.arn(key)}


def enable_key_rotation(kms: KmsService, account: str, body: Json) -> Json:
    period = body.get("RotationPeriodInDays")
    if period is not None and not _is_int(period):
        raise KmsError("ValidationException", "RotationPeriodInDays must be an integer.")
    kms.enable_rotation(account, _str(body, "KeyId"), period)
    return {}


def disable_key_rotation(kms: KmsService, account: str, body: Json) -> Json:
    kms.disable_rotation(account, _str(body, "KeyId"))
    return {}


def get_key_rotation_status(kms: KmsService, account: str, body: Json) -> Json:
    key = kms.rotation_status(account, _str(body, "KeyId"))
    out: Json = {"KeyId": key.key_id, "KeyRotationEnabled": kms.rotation_enabled(key)}
    if kms.rotation_enabled(key) and key.next_rotation is not None:
        out["RotationPeriodInDays"] = key.rotation_period_days
        out["NextRotationDate"] = key.next_rotation.timestamp()
    return out


def rotate_key_on_demand(kms: KmsService, account: str, body: Json) -> Json:
    key = kms.rotate_on_demand(account, _str(body, "KeyId"))
    return {"KeyId": key.key_id}


def list_key_rotations(kms: KmsService, account: str, body: Json) -> Json:
    """The key's rotations, oldest first (``ALL_KEY_MATERIAL``: its first material too), paged
    by ``Limit`` (1-1000, default 100) with the next material version as ``NextMarker``."""
    limit = body.get("Limit", 100)
    if not _is_int(limit) or not 1 <= limit <= 1000:
        raise KmsError("ValidationException", "Limit must be an integer between 1 and 1000.")
    include = body.get("IncludeKeyMaterial", "ROTATIONS_ONLY")
    if include not in ("ROTATIONS_ONLY", "ALL_KEY_MATERIAL"):
        raise KmsError(
            "ValidationException", "IncludeKeyMaterial must be ALL_KEY_MATERIAL or ROTATIONS_ONLY."
        )
    key, materials = kms.rotations(account, _str(body, "KeyId"))
    entries: list[tuple[int, Json]] = []
    if include == "ALL_KEY_MATERIAL":
        entries.append((1, _material_entry(key.key_id, 1, key.material_version)))
    for material in materials:
        entry = _material_entry(key.key_id, material.version, key.material_version)
        entry["RotationDate"] = material.rotated.timestamp()
        entry["RotationType"] = material.rotation_type
        entries.append((material.version, entry))
    start = 0
    marker = body.get("Marker")
    if marker is not None:
        versions = [version for version, _ in entries]
        if not isinstance(marker, str) or not marker.isdigit() or int(marker) not in versions:
            raise KmsError("InvalidMarkerException", "The marker is not valid.")
        start = versions.index(int(marker))
    page = entries[start : start + limit]
    out: Json = {"Rotations": [entry for _, entry in page], "Truncated": False}
    if start + limit < len(entries):
        out["Truncated"] = True
        out["NextMarker"] = str(entries[start + limit][0])
    return out


def _material_entry(key_id: str, version: int, current: int) -> Json:
    return {
        "KeyId": key_id,
        "KeyMaterialId": key_material_id(key_id, version),
        "KeyMaterialState": "CURRENT" if version == current else "NON_CURRENT",
    }


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def create_alias(kms: KmsService, account: str, body: Json) -> Json:
    kms.create_alias(account, _str(body, "AliasName"), _str(body, "TargetKeyId"))
    return {}


def list_aliases(kms: KmsService, account: str, body: Json) -> Json:
    wanted = body.get("KeyId")
    prefix = f"arn:{kms.partition}:kms:{kms.region}:{account}:"
    out = []
    for alias, key_id in kms.list_aliases(account):
        if wanted is not None and kms.resolve(account, str(wanted)).key_id != key_id:
            continue
        out.append({"AliasName": alias, "AliasArn": prefix + alias, "TargetKeyId": key_id})
    return {"Aliases": out, "Truncated": False}


def generate_data_key(kms: KmsService, account: str, body: Json) -> Json:
    key = kms.resolve(account, _str(body, "KeyId"))
    spec = body.get("KeySpec")
    size = body.get("NumberOfBytes")
    if spec is not None and size is not None:
        raise KmsError("ValidationException", "Give KeySpec or NumberOfBytes, not both.")
    if spec is not None:
        sizes = {"AES_256": 32, "AES_128": 16}
        if spec not in sizes:
            raise KmsError("ValidationException", "KeySpec must be AES_256 or AES_128.")
        size = sizes[spec]
    if size is None:
        raise KmsError("ValidationException", "KeySpec or NumberOfBytes is required.")
    if not _is_int(size):
        raise KmsError("ValidationException", "NumberOfBytes must be an integer.")
    plain, blob = kms.generate_data_key(key, size, _context(body))
    return {
        "KeyId": kms.arn(key),
        "Plaintext": base64.b64encode(plain).decode(),
        "CiphertextBlob": base64.b64encode(blob).decode(),
    }


def encrypt(kms: KmsService, account: str, body: Json) -> Json:
    key = kms.resolve(account, _str(body, "KeyId"))
    blob = kms.encrypt(key, _b64(body, "Plaintext"), _context(body))
    return {
        "KeyId": kms.arn(key),
        "CiphertextBlob": base64.b64encode(blob).decode(),
        "EncryptionAlgorithm": "SYMMETRIC_DEFAULT",
    }


def decrypt(kms: KmsService, account: str, body: Json) -> Json:
    key_ref = body.get("KeyId")
    key, plain = kms.decrypt(
        account,
        _b64(body, "CiphertextBlob"),
        _context(body),
        key_ref if isinstance(key_ref, str) else None,
    )
    return {
        "KeyId": kms.arn(key),
        "Plaintext": base64.b64encode(plain).decode(),
        "EncryptionAlgorithm": "SYMMETRIC_DEFAULT",
    }


OPERATIONS: Mapping[str, Operation] = {
    "CreateKey": create_key,
    "DescribeKey": describe_key,
    "ListKeys": list_keys,
    "EnableKey": enable_key,
    "DisableKey": disable_key,
    "ScheduleKeyDeletion": schedule_key_deletion,
    "CancelKeyDeletion": cancel_key_deletion,
    "EnableKeyRotation": enable_key_rotation,
    "DisableKeyRotation": disable_key_rotation,
    "GetKeyRotationStatus": get_key_rotation_status,
    "RotateKeyOnDemand": rotate_key_on_demand,
    "ListKeyRotations": list_key_rotations,
    "CreateAlias": create_alias,
    "ListAliases": list_aliases,
    "GenerateDataKey": generate_data_key,
    "Encrypt": encrypt,
    "Decrypt": decrypt,
}

#: The operations that neither change a key nor make new ciphertext: all a tenant being
#: offboarded may call. Any other operation (one added later too) is a write.
READS = frozenset(
    {
        "DescribeKey",
        "ListKeys",
        "GetKeyRotationStatus",
        "ListKeyRotations",
        "ListAliases",
        "Decrypt",
    }
)


def error_body(kind: str, message: str) -> bytes:
    return json.dumps({"__type": kind, "message": message}).encode()


def payload_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


async def call(
    kms: KmsService, blocking: Blocking, target: str, account: str, body: bytes
) -> tuple[int, bytes]:
    """Run one KMS operation: (status, JSON body)."""
    name = target[len(TARGET_PREFIX) :] if target.startswith(TARGET_PREFIX) else ""
    operation = OPERATIONS.get(name)
    if operation is None:
        return 400, error_body("UnknownOperationException", f"{name or target} is not supported.")
    try:
        parsed = json.loads(body or b"{}")
    except (ValueError, UnicodeDecodeError):
        return 400, error_body("SerializationException", "The request body is not valid JSON.")
    if not isinstance(parsed, dict):
        return 400, error_body("SerializationException", "The request body must be an object.")
    try:
        result = await blocking(operation, kms, account, parsed)
    except KmsError as err:
        return 400, error_body(err.kind, err.message)
    except KeyServiceUnavailable as err:
        log.error("KMS %s failed: %s", name, err)
        return 503, error_body("DependencyTimeoutException", KEY_SERVICE_DOWN)
    return 200, json.dumps(result).encode()


__all__ = [
    "CONTENT_TYPE",
    "MAX_BODY",
    "OPERATIONS",
    "READS",
    "TARGET_PREFIX",
    "call",
    "payload_hash",
]


async def _read_body(req: Request) -> bytes:
    length = req.content_length()
    if length is not None and length > MAX_BODY:
        raise KmsError("ValidationException", "The request body is too large.")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await req.receive()
        if message["type"] != "http.request":
            break
        piece = message.get("body", b"")
        assert isinstance(piece, bytes)
        size += len(piece)
        if size > MAX_BODY:
            raise KmsError("ValidationException", "The request body is too large.")
        chunks.append(piece)
        if not message.get("more_body"):
            break
    req.body_done = True
    return b"".join(chunks)


async def handle(
    req: Request,
    kms: KmsService | None,
    identities: Identities,
    blocking: Blocking,
    region: str,
    offboarding: OffboardingGate | None = None,
) -> Response:
    """One KMS API request: read the JSON body, verify SigV4 (service ``kms``), dispatch."""
    headers = {"Content-Type": CONTENT_TYPE}
    target = req.headers.get("x-amz-target", "")
    req.plane = plane = Plane("kms", target.removeprefix(TARGET_PREFIX)[:64] or "Unknown")
    try:
        if kms is None:
            raise KmsError("UnsupportedOperationException", "KMS is not enabled on this server.")
        body = await _read_body(req)
        plane.parameters = _parameters(body)
        signed = dict(req.headers)
        signed.setdefault("x-amz-content-sha256", payload_hash(body))
        auth = authenticate(
            req.method,
            req.raw_path,
            req.query_string,
            signed,
            lookup=identities.secret_for,
            region=region,
            service="kms",
        )
        if auth.access_key is None:
            raise KmsError("AccessDeniedException", "KMS requests must be signed.")
        if auth.content_sha256 is not None and auth.content_sha256 != payload_hash(body):
            raise KmsError("InvalidSignatureException", "The payload hash does not match.")
        principal = identities.principal(auth.access_key)
        if principal is None:
            raise KmsError("UnrecognizedClientException", "The security token is invalid.")
        req.principal = principal
        if offboarding is not None and plane.name not in READS:
            try:
                await offboarding.check_account(principal.account_id)
            except AccountProblem as problem:
                raise KmsError(problem.code, problem.message) from None
        status, out = await call(
            kms, blocking, req.headers.get("x-amz-target", ""), principal.account_id, body
        )
    except KmsError as err:
        status, out = 400, error_body(err.kind, err.message)
    except S3Error as err:
        kind = "InvalidSignatureException" if err.status == 403 else err.code
        status, out = (400 if err.status < 500 else err.status), error_body(kind, err.message)
    if status >= 300:
        _failed(plane, out)
    return Response(status, headers, out)


def _parameters(body: bytes) -> dict[str, str]:
    """The allow-listed fields of a request body, for its audit record (never a plaintext)."""
    try:
        parsed = json.loads(body or b"{}")
    except (ValueError, UnicodeDecodeError):
        return {}
    return pick(parsed, KMS_PARAMETERS) if isinstance(parsed, dict) else {}


def _failed(plane: Plane, out: bytes) -> None:
    try:
        error = json.loads(out)
        plane.failed(str(error.get("__type", "")), str(error.get("message", "")))
    except (ValueError, AttributeError):
        plane.failed("InternalFailure", "")
